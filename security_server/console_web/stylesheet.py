"""The console's one stylesheet, served at ``/console/static/console.css`` (no inline style: the pages' CSP forbids it).

Colours meet WCAG AA contrast on white (text 4.5:1 or more); a verdict is always written out, never shown by colour
alone; focus is outlined for keyboard users.
"""

from __future__ import annotations

CSS = b"""
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #ffffff; line-height: 1.45; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 0.5rem; top: 0.5rem; background: #ffffff; padding: 0.25rem 0.5rem; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: 0.5rem 1rem;
         background: #0b3d62; color: #ffffff; }
header a, header .brand { color: #ffffff; }
.brand { font-weight: bold; margin: 0; }
nav ul { list-style: none; display: flex; gap: 1rem; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: bold; text-decoration-thickness: 3px; }
.account { margin-left: auto; }
main { padding: 1rem; max-width: 80rem; }
a { color: #0a4f8a; }
:focus-visible { outline: 3px solid #d9730d; outline-offset: 2px; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
caption { text-align: left; font-weight: bold; padding: 0.25rem 0; }
th, td { border: 1px solid #8a8a8a; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
.status-ok { color: #1b5e20; font-weight: bold; }
.status-bad { color: #b00020; font-weight: bold; }
.status-unknown { color: #5c4400; font-weight: bold; }
.error { color: #b00020; }
.notice { border-left: 4px solid #0b3d62; padding: 0.25rem 0.75rem; background: #f3f6f9; }
form.search { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.75rem;
              align-items: end; margin-bottom: 1rem; }
label { display: block; font-weight: bold; }
form.action { margin: 0.5rem 0 1.5rem; max-width: 40rem; }
form.action > div { margin-bottom: 0.5rem; }
form.inline { display: inline; }
small { display: block; color: #4a4a4a; }
input, select, button { font: inherit; }
input[type="text"], input[type="password"], input[type="datetime-local"] { width: 100%; box-sizing: border-box; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: 0.5rem; border: 1px solid #cccccc; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
.chart svg { max-width: 100%; height: auto; border: 1px solid #cccccc; }
.bar-ok { fill: #1b5e20; }
.bar-failed { fill: #b00020; }
.axis { stroke: #1a1a1a; }
.chart text { font-size: 11px; fill: #1a1a1a; }
.legend { display: flex; gap: 1rem; list-style: none; padding: 0; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; vertical-align: middle; margin-right: 0.3rem; }
.swatch-ok { background: #1b5e20; }
.swatch-failed { background: #b00020; }
"""
