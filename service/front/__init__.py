"""The HTTP front: one uvicorn process with its middlewares, the fast lane, FastAPI for the
other routes, the result cache, and the pool that feeds its model workers."""
