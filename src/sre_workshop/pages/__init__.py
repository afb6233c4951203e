"""The tool's HTML pages (doctor's report, the scorecard): chart specs from series (spec.py), and one
self-contained offline page that draws them with the vendored uPlot (document.py, assets/)."""
