"""The HTTP front, by role along the request path: the server (uvicorn and its connection
protocol), the edge (the route table and what every request meets), the API adapters, the classify
core (cache, single-flight, the pool that feeds the model workers) and telemetry."""
