"""Load generators and benchmarks that drive a real service over loopback HTTP."""
