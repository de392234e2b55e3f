"""Analysis of results already measured: compare, scaling, sweep analysis, offline-vs-serving gap attribution."""
