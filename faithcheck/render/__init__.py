"""Turning scored runs into pages: `report.html` and `report.md` (`faithcheck report`).

- `views`: a run directory read into a `Checkpoint` (what every page shows) and its tables;
- `charts`: the SVG charts (truncation curves, judge labels, flip rates, the scatter);
- `svg`: the drawing primitives every chart uses, saturation's plots included;
- `explorer`: the per-response explorer at the end of the HTML page;
- `page`: the self-contained HTML document (`write_reports` writes both files);
- `markdown`: the Markdown version for a pull-request comment.
"""
