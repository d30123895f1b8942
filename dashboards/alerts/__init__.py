"""The alert engine: rules from YAML, evaluated by one leader across server processes, stored with history."""
