"""The HTTP server under the app: the launcher (uvicorn processes, sockets, signals) and the
connection protocol that bounds what a client may send before the app sees it."""
