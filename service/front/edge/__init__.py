"""The edge: what every request meets before its handler, matched once against the route table."""
