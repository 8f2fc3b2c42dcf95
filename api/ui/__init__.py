"""The dashboard: server-rendered pages under / and /ui/… (api.ui.pages), sessions and sign-in codes
(api.ui.sessions), the plotly.js bundle of the installed `plotly` package (api.ui.assets)."""
