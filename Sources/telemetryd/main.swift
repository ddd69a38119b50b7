print("telemetryd")
