"""Policy engine: policy files to a pure evaluate(parsed, route, state) -> Verdict."""
