"""Where requests and events come in: the HTTP resolver and its models, the ECS event model,
queue messages, batch processing. Status codes exist only here."""
