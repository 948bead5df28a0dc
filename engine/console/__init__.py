"""The editors' web console: its built files and the code that finds them.

The console is a single page (TypeScript sources in `console/` at the repository root,
built by `make console` into `static/` here and shipped in the wheel) that talks to the
same HTTP API as any service, with the same tokens. Nothing here evaluates anything: the
HTTP front serves these files itself (engine/service/http.py, rows `by=By.FILES` of the
route table), so this package imports only the standard library.
"""
