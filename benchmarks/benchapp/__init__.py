"""The application the request benchmarks serve, built once per variant (see ``variants``)."""
