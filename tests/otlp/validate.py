#!/usr/bin/env python3
"""Validate telemetryd's OTLP/HTTP JSON against the official OpenTelemetry protobuf definitions.

Usage: validate.py logs|metrics FILE

1. Parses FILE with protobuf's own JSON parser (google.protobuf.json_format.Parse,
   ignore_unknown_fields=False) into opentelemetry.proto.collector.{logs,metrics}.v1
   Export{Logs,Metrics}ServiceRequest, from the `opentelemetry-proto` package.
2. Checks the stricter OTLP JSON rules the protobuf parser tolerates: lowerCamelCase member names only,
   enums as integers, 64-bit integers as decimal strings, no null, no bytes fields (traceId/spanId
   are hex in OTLP but base64 in protobuf JSON, and telemetryd never sets them).
3. Checks telemetryd's mapping on the parsed message (resource attributes, scope, severities, times,
   metric shapes; see docs/otlp.md).

Prints a JSON summary of the parsed request on stdout and exits 0 when everything holds; otherwise
prints every problem on stderr and exits 1. Exit 2 is a usage error, exit 3 a missing Python package.
"""

import json
import re
import sys

INSTALL = "python3 -m pip install 'opentelemetry-proto==1.45.2' 'protobuf==7.36.2'"

try:
    from google.protobuf import json_format
    from google.protobuf.descriptor import FieldDescriptor
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
except ImportError as error:  # the test must fail loudly, not skip
    sys.stderr.write(
        f"validate.py: the official OpenTelemetry protobuf package is not importable ({error}).\n"
        f"Install it for {sys.executable} with:\n    {INSTALL.replace('python3', sys.executable, 1)}\n"
    )
    sys.exit(3)

SEVERITY = {"debug": 5, "info": 9, "success": 9, "warning": 13, "error": 17}
INT64_TYPES = {
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_SINT64,
}
DECIMAL = re.compile(r"^-?[0-9]+$")


def is_repeated(field):
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


# ---------------------------------------------------------------------------------------------------
# OTLP JSON rules on the raw JSON, walked along the message descriptors


def check_json(descriptor, value, path, problems):
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a JSON object for {descriptor.full_name}")
        return
    by_json_name = {field.json_name: field for field in descriptor.fields}
    for key, member in value.items():
        field = by_json_name.get(key)
        where = f"{path}.{key}"
        if field is None:
            proto_field = descriptor.fields_by_name.get(key)
            if proto_field is not None:
                problems.append(f"{where}: proto field name; OTLP JSON requires the lowerCamelCase name "
                                f"'{proto_field.json_name}'")
            else:
                problems.append(f"{where}: not a field of {descriptor.full_name}")
            continue
        if member is None:
            problems.append(f"{where}: null (leave the field out instead)")
            continue
        if is_repeated(field):
            if not isinstance(member, list):
                problems.append(f"{where}: expected an array")
                continue
            for index, element in enumerate(member):
                check_field(field, element, f"{where}[{index}]", problems)
        else:
            check_field(field, member, where, problems)


def check_field(field, value, where, problems):
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        check_json(field.message_type, value, where, problems)
    elif kind == FieldDescriptor.TYPE_ENUM:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: enum {field.enum_type.full_name} must be an integer, got {value!r}")
    elif kind in INT64_TYPES:
        if not isinstance(value, str) or not DECIMAL.match(value):
            problems.append(f"{where}: 64-bit integer must be a decimal string, got {value!r}")
    elif kind == FieldDescriptor.TYPE_BYTES:
        problems.append(f"{where}: bytes field present (telemetryd omits traceId/spanId)")
    elif kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}: expected a JSON number, got {value!r}")
    elif kind == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")


# ---------------------------------------------------------------------------------------------------
# telemetryd's mapping, on the parsed message


def any_value(value):
    kind = value.WhichOneof("value")
    return None if kind is None else (kind, getattr(value, kind))


def attributes(key_values, where, problems):
    result = {}
    for kv in key_values:
        if kv.key in result:
            problems.append(f"{where}: attribute {kv.key!r} appears twice")
        result[kv.key] = any_value(kv.value)
    return result


def check_resource(resource, where, problems):
    attrs = attributes(resource.attributes, f"{where}.resource", problems)
    name = attrs.get("service.name")
    if name is None or name[0] != "string_value" or not name[1]:
        problems.append(f"{where}: resource lacks a non-empty string service.name")
    execution = attrs.get("telemetry.execution.id")
    if execution is None or execution[0] != "string_value":
        problems.append(f"{where}: resource lacks telemetry.execution.id")
    if ("deployment.environment" in attrs) != ("deployment.environment.name" in attrs):
        problems.append(f"{where}: deployment.environment and deployment.environment.name must come together")
    for key, value in attrs.items():
        if value is None or value[0] != "string_value":
            problems.append(f"{where}: resource attribute {key} is not a stringValue")
    return attrs


def check_scope(scope, where, problems):
    if scope.name != "telemetryd" or not scope.version:
        problems.append(f"{where}: scope must be telemetryd with a version, got {scope.name!r} {scope.version!r}")


def check_logs(request, problems):
    summary = {"kind": "logs", "resources": []}
    for r, resource_logs in enumerate(request.resource_logs):
        where = f"resourceLogs[{r}]"
        resource = check_resource(resource_logs.resource, where, problems)
        execution = (resource.get("telemetry.execution.id") or (None, None))[1]
        if len(resource_logs.scope_logs) != 1:
            problems.append(f"{where}: expected exactly one scopeLogs")
        records = []
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            check_scope(scope_logs.scope, f"{where}.scopeLogs[{s}]", problems)
            if not scope_logs.log_records:
                problems.append(f"{where}.scopeLogs[{s}]: no log records (the end record is always there)")
            for i, record in enumerate(scope_logs.log_records):
                at = f"{where}.scopeLogs[{s}].logRecords[{i}]"
                attrs = attributes(record.attributes, at, problems)
                if record.time_unix_nano <= 0 or record.observed_time_unix_nano <= 0:
                    problems.append(f"{at}: timeUnixNano and observedTimeUnixNano must be set")
                if record.severity_number not in (5, 9, 13, 17):
                    problems.append(f"{at}: severityNumber {record.severity_number} is not DEBUG/INFO/WARN/ERROR")
                if SEVERITY.get(record.severity_text) != record.severity_number:
                    problems.append(f"{at}: severityText {record.severity_text!r} does not match "
                                    f"severityNumber {record.severity_number}")
                if record.body.WhichOneof("value") != "string_value":
                    problems.append(f"{at}: body must be a stringValue")
                if record.trace_id or record.span_id:
                    problems.append(f"{at}: traceId/spanId must be omitted")
                if attrs.get("script.execution_id") != ("string_value", execution):
                    problems.append(f"{at}: script.execution_id does not match the resource's telemetry.execution.id")
                event_type = (attrs.get("script.event.type") or (None, None))[1]
                is_last = i == len(scope_logs.log_records) - 1
                if (event_type == "end") != is_last:
                    problems.append(f"{at}: the end record (script.event.type=end) must be the last, and only there")
                if event_type == "end":
                    status = (attrs.get("script.execution.status") or (None, None))[1]
                    exit_code = attrs.get("script.execution.exit_code")
                    if status in ("success", "failure") and (exit_code is None or exit_code[0] != "int_value"):
                        problems.append(f"{at}: an ended execution's end record needs an intValue exit code")
                    if status == "incomplete" and exit_code is not None:
                        problems.append(f"{at}: an incomplete execution has no exit code")
                elif attrs.get("script.event.type") != ("string_value", record.severity_text):
                    problems.append(f"{at}: script.event.type must repeat the level {record.severity_text!r}")
                for key, value in attrs.items():
                    if key.startswith("script.tag.") and (value is None or value[0] != "string_value"):
                        problems.append(f"{at}: tag attribute {key} is not a stringValue")
                records.append({
                    "timeUnixNano": str(record.time_unix_nano),
                    "severityNumber": record.severity_number,
                    "severityText": record.severity_text,
                    "body": record.body.string_value,
                    "type": event_type,
                    "attributes": len(record.attributes),
                })
        summary["resources"].append({
            "service.name": (resource.get("service.name") or (None, None))[1],
            "execution": execution,
            "records": records,
        })
    return summary


def check_metrics(request, problems):
    summary = {"kind": "metrics", "resources": []}
    for r, resource_metrics in enumerate(request.resource_metrics):
        where = f"resourceMetrics[{r}]"
        resource = check_resource(resource_metrics.resource, where, problems)
        if len(resource_metrics.scope_metrics) != 1:
            problems.append(f"{where}: expected exactly one scopeMetrics")
        metrics = {}
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            check_scope(scope_metrics.scope, f"{where}.scopeMetrics[{s}]", problems)
            for m, metric in enumerate(scope_metrics.metrics):
                at = f"{where}.scopeMetrics[{s}].metrics[{m}] ({metric.name})"
                if not metric.name.startswith("script."):
                    problems.append(f"{at}: metric names start with 'script.'")
                if metric.name in metrics:
                    problems.append(f"{at}: metric appears twice")
                if metric.WhichOneof("data") != "gauge" or len(metric.gauge.data_points) != 1:
                    problems.append(f"{at}: expected a gauge with one data point")
                    continue
                point = metric.gauge.data_points[0]
                if point.time_unix_nano <= 0:
                    problems.append(f"{at}: timeUnixNano must be set")
                if point.start_time_unix_nano and point.start_time_unix_nano > point.time_unix_nano:
                    problems.append(f"{at}: startTimeUnixNano is after timeUnixNano")
                kind = point.WhichOneof("value")
                if metric.name == "script.execution.exit_code":
                    if kind != "as_int" or not 0 <= point.as_int <= 255:
                        problems.append(f"{at}: the exit code must be an asInt in 0-255")
                elif kind != "as_double":
                    problems.append(f"{at}: expected asDouble")
                if metric.name == "script.execution.duration" and (metric.unit != "s" or point.as_double < 0):
                    problems.append(f"{at}: the duration is a non-negative asDouble in unit 's'")
                if metric.name.startswith("script.execution."):
                    status = attributes(point.attributes, at, problems).get("script.execution.status")
                    if status is None or status[0] != "string_value":
                        problems.append(f"{at}: lacks the script.execution.status attribute")
                metrics[metric.name] = point.as_int if kind == "as_int" else point.as_double
        summary["resources"].append({
            "service.name": (resource.get("service.name") or (None, None))[1],
            "execution": (resource.get("telemetry.execution.id") or (None, None))[1],
            "metrics": metrics,
        })
    return summary


def main(argv):
    if len(argv) != 3 or argv[1] not in ("logs", "metrics"):
        sys.stderr.write("usage: validate.py logs|metrics FILE\n")
        return 2
    kind, path = argv[1], argv[2]
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        sys.stderr.write(f"validate.py: cannot read {path}: {error}\n")
        return 2
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        sys.stderr.write(f"validate.py: {path} is not UTF-8: {error}\n")
        return 1

    request = (logs_service_pb2.ExportLogsServiceRequest() if kind == "logs"
               else metrics_service_pb2.ExportMetricsServiceRequest())
    try:
        json_format.Parse(text, request, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        sys.stderr.write(f"validate.py: protobuf JSON parse of {request.DESCRIPTOR.full_name} failed: {error}\n")
        return 1

    problems = []

    def no_constants(name):
        problems.append(f"JSON constant {name} is not allowed")
        return None

    check_json(request.DESCRIPTOR, json.loads(text, parse_constant=no_constants), "$", problems)
    summary = check_logs(request, problems) if kind == "logs" else check_metrics(request, problems)
    if problems:
        sys.stderr.write(f"validate.py: {len(problems)} problem(s) in {path}:\n")
        for problem in problems:
            sys.stderr.write(f"  {problem}\n")
        return 1
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
