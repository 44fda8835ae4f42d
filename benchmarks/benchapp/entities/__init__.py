"""Entity package of the benchmark app, found by flask-entitydb's default discovery."""
