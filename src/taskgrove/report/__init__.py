"""Reports on runs: score tables (terminal, Markdown, CSV, JSON), a static HTML report with
leaderboards, charts, a training heatmap and a sample browser, and paired run comparisons.

Modules, one job each: :mod:`~taskgrove.report.collect` (load run directories),
:mod:`~taskgrove.report.scores` (per-sample scores), :mod:`~taskgrove.report.groups` (group scores
up the task tree), :mod:`~taskgrove.report.leaderboard` (the tasks x runs matrix),
:mod:`~taskgrove.report.tables` (text formats), :mod:`~taskgrove.report.svg` (charts),
:mod:`~taskgrove.report.samples` (sample rows), :mod:`~taskgrove.report.html` (the page),
:mod:`~taskgrove.report.training` (``comparison.json``), :mod:`~taskgrove.report.compare`
(paired tests), :mod:`~taskgrove.report.stats` (the statistics), :mod:`~taskgrove.cli.report`.
"""
