print("telemetry")
