"""Running tasks: the executor (many tasks, failures isolated), one sample's job, the run's model
seen through a task's sampling settings, replay of stored replies, and progress display."""
