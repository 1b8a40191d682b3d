#!/usr/bin/env python3
"""Checks deploy/grafana/dashboards/*.json against the rules of Grafana's dashboard JSON schema
(the `Dashboard`, `Panel`, `RowPanel`, `GridPos`, `FieldConfigSource`, `FieldConfig`,
`DataSourceRef`, `AnnotationQuery` and `VariableModel` definitions of the schema Grafana
publishes for dashboards, schemaVersion 36-39): allowed and required keys, types, grid bounds,
unique panel ids. Also checks what the schema cannot: every query names the provisioned data
source through the `$datasource` variable, every query is narrowed to `$instance`, the
`datasource` and `instance` variables exist, and (with --metrics FILE, a scrape of lookout's
/metrics) every lookout_* and process_* metric a query uses exists, except the names listed in
PENDING (none today). dcgm-exporter's DCGM_FI_* names are only checked on a host with GPUs
(where the scrape has them): panels tagged "gpu" show data only there.
Whether each query returns data is checked against a real Prometheus by scripts/test-promtool.sh.
Standard library only. Exit status 1 on any problem; prints one line per problem.
"""
import json
import re
import sys

DATASOURCE_UID = "lookout-prometheus"   # the provisioned source, the variable's default
DATASOURCE_VAR = "${datasource}"
# Metrics the dashboard may show before lookout exports them (panels would say "No data").
PENDING: set = set()  # every metric the dashboard uses is exported now

DASHBOARD_KEYS = {"id", "uid", "title", "description", "revision", "gnetId", "tags", "timezone",
                  "editable", "graphTooltip", "time", "timepicker", "fiscalYearStartMonth",
                  "liveNow", "weekStart", "refresh", "schemaVersion", "version", "panels",
                  "templating", "annotations", "links", "snapshot"}
DASHBOARD_REQUIRED = {"schemaVersion", "templating", "annotations"}
PANEL_KEYS = {"type", "id", "pluginVersion", "tags", "targets", "title", "description",
              "transparent", "datasource", "gridPos", "links", "repeat", "repeatDirection",
              "maxPerRow", "maxDataPoints", "transformations", "interval", "timeFrom",
              "timeShift", "hideTimeOverride", "libraryPanel", "options", "fieldConfig"}
ROW_KEYS = {"type", "collapsed", "title", "datasource", "gridPos", "id", "panels", "repeat"}
ROW_REQUIRED = {"type", "collapsed", "id", "panels"}
GRID_KEYS = {"h", "w", "x", "y", "static"}
FIELDCONFIG_KEYS = {"displayName", "displayNameFromDS", "description", "path", "writeable",
                    "filterable", "unit", "decimals", "min", "max", "mappings", "thresholds",
                    "color", "links", "noValue", "custom"}
ANNOTATION_KEYS = {"name", "datasource", "enable", "hide", "iconColor", "filter", "target",
                   "type", "builtIn"}
ANNOTATION_REQUIRED = {"name", "datasource", "enable", "iconColor"}
DSREF_KEYS = {"type", "uid"}
VARIABLE_KEYS = {"type", "name", "label", "hide", "skipUrlSync", "description", "query",
                 "datasource", "current", "multi", "options", "refresh", "sort", "includeAll",
                 "allValue", "regex"}
KNOWN_PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap",
                     "piechart", "barchart", "histogram", "state-timeline", "status-history"}

problems = []
GPU_STATE = set()  # {"lookout_gpu_up 1"} when the --metrics scrape comes from a GPU host


def bad(where, msg):
    problems.append(f"{where}: {msg}")


def keys(where, obj, allowed, required=()):
    if not isinstance(obj, dict):
        bad(where, "must be an object")
        return False
    for k in set(obj) - set(allowed):
        bad(where, f"key {k!r} is not allowed by the schema")
    for k in set(required) - set(obj):
        bad(where, f"required key {k!r} is missing")
    return True


def typed(where, obj, key, types):
    if key not in obj:
        return
    value, allowed = obj[key], types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        bad(where, f"{key!r} has the wrong type ({type(value).__name__})")


def dsref(where, ref):
    if keys(where, ref, DSREF_KEYS):
        for k in ("type", "uid"):
            typed(where, ref, k, str)


def grid(where, g):
    if keys(where, g, GRID_KEYS, {"h", "w", "x", "y"}):
        for k in ("h", "w", "x", "y"):
            typed(where, g, k, int)
        if g.get("h", 1) <= 0 or not 0 < g.get("w", 1) <= 24:
            bad(where, "h must be > 0 and 0 < w <= 24")
        if not 0 <= g.get("x", 0) < 24 or g.get("x", 0) + g.get("w", 0) > 24:
            bad(where, "x must be in [0, 24) and x + w <= 24")


def panel(where, p, metrics_used):
    if p.get("type") == "row":
        if keys(where, p, ROW_KEYS, ROW_REQUIRED):
            typed(where, p, "collapsed", bool)
            typed(where, p, "id", int)
            if "gridPos" in p:
                grid(where + ".gridPos", p["gridPos"])
            for i, sub in enumerate(p.get("panels", [])):
                panel(f"{where}.panels[{i}]", sub, metrics_used)
        return
    if not keys(where, p, PANEL_KEYS, {"type"}):
        return
    if p["type"] not in KNOWN_PANEL_TYPES:
        bad(where, f"unknown panel type {p['type']!r}")
    typed(where, p, "id", int)
    for k in ("title", "description"):
        typed(where, p, k, str)
    if "gridPos" in p:
        grid(where + ".gridPos", p["gridPos"])
    else:
        bad(where, "no gridPos")
    if "datasource" in p:
        dsref(where + ".datasource", p["datasource"])
    fc = p.get("fieldConfig")
    if fc is not None and keys(where + ".fieldConfig", fc, {"defaults", "overrides"},
                               {"defaults", "overrides"}):
        keys(where + ".fieldConfig.defaults", fc["defaults"], FIELDCONFIG_KEYS)
        typed(where + ".fieldConfig.defaults", fc["defaults"], "unit", str)
        typed(where + ".fieldConfig.defaults", fc["defaults"], "min", (int, float))
        typed(where + ".fieldConfig.defaults", fc["defaults"], "max", (int, float))
        if not isinstance(fc["overrides"], list):
            bad(where + ".fieldConfig.overrides", "must be an array")
    if "options" in p and not isinstance(p["options"], dict):
        bad(where + ".options", "must be an object")
    targets = p.get("targets", [])
    if not targets:
        bad(where, "has no query")
    refids = set()
    for i, t in enumerate(targets):
        tw = f"{where}.targets[{i}]"
        if not isinstance(t, dict):
            bad(tw, "must be an object")
            continue
        if t.get("refId") in refids:
            bad(tw, "duplicate refId")
        refids.add(t.get("refId"))
        ds = t.get("datasource", p.get("datasource", {}))
        if ds.get("uid") != DATASOURCE_VAR or ds.get("type") != "prometheus":
            bad(tw, f"data source must be the {DATASOURCE_VAR!r} variable (prometheus)")
        expr = t.get("expr", "")
        if not isinstance(expr, str) or not expr.strip():
            bad(tw, "no PromQL expression")
            continue
        if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
            bad(tw, f"unbalanced brackets in {expr!r}")
        if "$instance" not in expr:
            bad(tw, f"query is not narrowed to $instance: {expr!r}")
        names = re.findall(r"\b(?:lookout|process)_[a-z0-9_]+", expr)
        # GPU panels may name series only a GPU host has: kept apart from the scrape check.
        metrics_used.update(f"gpu-only:{m}" if "gpu" in p.get("tags", []) else m for m in names)
        if "DCGM_FI_" in expr and "gpu" not in p.get("tags", []):
            bad(tw, "a DCGM_FI_* query outside a panel tagged 'gpu'")


def dashboard(path, exported):
    d = json.load(open(path))
    where = path
    keys(where, d, DASHBOARD_KEYS, DASHBOARD_REQUIRED)
    typed(where, d, "schemaVersion", int)
    for k in ("uid", "title", "timezone", "weekStart", "description"):
        typed(where, d, k, str)
    for k in ("editable", "liveNow"):
        typed(where, d, k, bool)
    if d.get("graphTooltip", 0) not in (0, 1, 2):
        bad(where, "graphTooltip must be 0, 1 or 2")
    if not 8 <= len(d.get("uid", "")) <= 40:
        bad(where, "uid must be 8-40 characters")
    if "time" in d:
        keys(where + ".time", d["time"], {"from", "to"}, {"from", "to"})
    keys(where + ".templating", d.get("templating", {}), {"list"})
    variables = {}
    for i, v in enumerate(d.get("templating", {}).get("list", [])):
        keys(f"{where}.templating.list[{i}]", v, VARIABLE_KEYS, {"type", "name"})
        variables[v.get("name")] = v
    ds_var = variables.get("datasource", {})
    if ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        bad(where, "no `datasource` variable of Prometheus data sources")
    elif ds_var.get("current", {}).get("value") != DATASOURCE_UID:
        bad(where, f"the `datasource` variable must default to {DATASOURCE_UID!r}")
    inst = variables.get("instance", {})
    if inst.get("type") != "query" or inst.get("datasource", {}).get("uid") != DATASOURCE_VAR:
        bad(where, "no `instance` query variable over the `datasource` variable")
    keys(where + ".annotations", d.get("annotations", {}), {"list"})
    for i, a in enumerate(d.get("annotations", {}).get("list", [])):
        aw = f"{where}.annotations.list[{i}]"
        if keys(aw, a, ANNOTATION_KEYS, ANNOTATION_REQUIRED):
            dsref(aw + ".datasource", a["datasource"])
    ids = []
    used = set()
    for i, p in enumerate(d.get("panels", [])):
        panel(f"{where}.panels[{i}]", p, used)
        ids.append(p.get("id"))
        ids.extend(s.get("id") for s in p.get("panels", []) if isinstance(s, dict))
    if len(ids) != len(set(ids)):
        bad(where, "panel ids are not unique")
    titles = " ".join(p.get("title", "") for p in d.get("panels", []))
    for section in ("Host", "Containers", "GPU", "History store", "HTTP", "/api/smart"):
        if section not in titles:
            bad(where, f"no {section} panels")
    gpu_only = {m for m in used if m.startswith("gpu-only:")}
    used = (used - gpu_only) | {m[len("gpu-only:"):] for m in gpu_only if "lookout_gpu_up 1" in GPU_STATE}
    if exported is not None:
        for m in sorted(used - PENDING):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            if m not in exported and base not in exported:
                bad(where, f"metric {m} is not exported by lookout's /metrics")
    return len(ids), used


def main(argv):
    exported = None
    paths = []
    it = iter(argv)
    for a in it:
        if a == "--metrics":
            text = open(next(it)).read()
            if re.search(r"^lookout_gpu_up(\{[^}]*\})? 1", text, re.M):
                GPU_STATE.add("lookout_gpu_up 1")
            # A family counts once it is announced: a counter with no labelled child yet
            # (no request to that route so far) has its TYPE line and no sample.
            exported = set(re.findall(r"^(?:# TYPE )?((?:lookout|process)_[a-z0-9_]+)", text, re.M))
        else:
            paths.append(a)
    if not paths:
        print("usage: check_dashboard.py [--metrics METRICS.txt] DASHBOARD.json...", file=sys.stderr)
        return 2
    for p in paths:
        n, used = dashboard(p, exported)
        print(f"{p}: {n} panels, {len(used)} lookout and process metrics"
              + ("" if exported is None else f" (checked against a live /metrics scrape; pending: {', '.join(sorted(used & PENDING)) or 'none'})"))
    for line in problems:
        print("PROBLEM " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
