"""Names other frameworks' task files use, mapped onto taskgrove's (``from taskgrove.compat import art``)."""
