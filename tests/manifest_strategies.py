"""Hypothesis strategies over Pipeline manifests, hostile ones included (issue 13).

The generators mix what people write with what broke Kascade before: names Kubernetes
refuses, durations and dates that overflow, non-finite and huge numbers, unknown time
zones, typos of fields and trigger rules, dependencies on tasks that do not exist,
cycles, nested groups and templates, and template expressions with filters. Every
draw is a plain dict (what YAML or the API server gives), so the tests can feed it to
``validate_document``, dump it to a file for the command line, or run its plan.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from name_cases import BAD_OBJECT_NAMES, GOOD_OBJECT_NAMES

TASK_NAMES = ["extract", "load", "t1", "t-2", "Report_A", "lod", "x" * 63]
GROUP_NAMES = ["etl", "g1", "sub"]


def _huge_int() -> st.SearchStrategy[int]:
    return st.sampled_from([10**30, -(10**30), 10**4299, 2**63, -(2**63) - 1])


def texts() -> st.SearchStrategy[str]:
    """Strings, hostile ones among them."""
    return st.one_of(
        st.text(max_size=12),
        st.sampled_from(["", "x; touch PWNED", "it's", "$(id)", "{{ ds }}", "ü", "\n", "1e999"]),
    )


def scalars() -> st.SearchStrategy[Any]:
    """JSON-ish values, with the edges of numbers."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        _huge_int(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e308, -1e308, 5e-324]),
        texts(),
    )


def json_values(depth: int = 2) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    )


def durations() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            ["0s", "1s", "90s", "5m", "1h30m", "2d", "1w", "36500d", "36500d1s", "999999999d",
             "2739000d", "999999w", "1.5h", ".5s", "-1s", "1e3", "5 minutes", "", "h", "1H"]
        ),
        st.integers(-5, 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
    )  # fmt: skip


def dates() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["2024-01-01", "2026-03-01T12:00:00Z", "0001-01-01", "9999-12-31", "1899-12-31",
         "3000-01-01", "2024-13-01", "yesterday", "2024-02-30", "2999-12-31T23:59:59-12:00"]
    )  # fmt: skip


def timezones() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["UTC", "Europe/Berlin", "America/New_York", "Europe", "Etc/", "../../etc/passwd",
         "A" * 300, "Not/AZone", ""]
    )  # fmt: skip


def schedules() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.sampled_from(
            ["@daily", "@hourly", "@once", "@weekly", "0 3 * * *", "*/15 * * * 1-5", "6h",
             "2739000d", "not a cron", "@sometimes", "61 * * * *", "0 0 30 2 *"]
        ),
    )  # fmt: skip


def expressions() -> st.SearchStrategy[str]:
    paths = st.sampled_from(
        ["ds", "params.n", "params.s", "params.o", "tasks.extract.outputs.rows", "item",
         "run_id", "nope", "params.n + params.n", "[params.n, 1]", "inputs.x"]
    )  # fmt: skip
    filters = st.sampled_from(
        ["", " | int", " | float", " | string", " | tojson", " | shquote", " | length",
         " | default(0)", " | ds_add(params.n)", " | upper", " | nofilter", " | join(',')"]
    )  # fmt: skip
    return st.builds(lambda p, f: p + f, paths, filters)


def templated_text() -> st.SearchStrategy[str]:
    prefix = st.sampled_from(["", "echo ", "x="])
    return st.one_of(
        st.text(max_size=10),
        st.builds(lambda e, pre: f"{pre}{{{{ {e} }}}}", expressions(), prefix),
        st.sampled_from(["{{ unclosed", "{{ }}", "}}", "{{ 'a' + }}"]),
    )


def tasks(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    def build(draw: Any) -> dict[str, Any]:
        task: dict[str, Any] = {"name": draw(st.sampled_from(names))}
        if draw(st.booleans()):
            task["image"] = "busybox"
        kind = draw(st.sampled_from(["command", "script", "args", "none"]))
        if kind == "command":
            task["command"] = draw(
                st.one_of(
                    st.lists(templated_text(), min_size=1, max_size=3),
                    st.builds(lambda t: ["sh", "-c", t], templated_text()),
                )
            )
        elif kind == "script":
            task["script"] = draw(templated_text())
        elif kind == "args":
            task["args"] = draw(st.lists(templated_text(), max_size=2))
        if draw(st.booleans()):
            task["dependsOn"] = draw(
                st.lists(st.sampled_from([*names, *GROUP_NAMES, "nope", "Bad Name"]), max_size=3)
            )
        for field in ("retryDelay", "timeout", "sla", "startTimeout"):
            if draw(st.integers(0, 4)) == 0:
                task[field] = draw(durations())
        if draw(st.integers(0, 3)) == 0:
            task["triggerRule"] = draw(
                st.sampled_from(["all_success", "all_done", "one_failed", "all_sucess", 7])
            )
        if draw(st.integers(0, 3)) == 0:
            task["retries"] = draw(st.one_of(st.integers(-1, 101), st.just("two")))
        if draw(st.integers(0, 5)) == 0:
            task["expand"] = draw(
                st.one_of(
                    st.builds(lambda v: {"items": v}, st.lists(scalars(), max_size=3)),
                    st.just({"param": "params.o"}),
                )
            )
        if draw(st.integers(0, 5)) == 0:
            task["sensor"] = draw(sensors())
        if draw(st.integers(0, 6)) == 0:
            task["pool"] = draw(st.sampled_from(["db", "large_pool", "Pool"]))
        if draw(st.integers(0, 6)) == 0:
            task[draw(st.sampled_from(["dependOn", "triger", "imagePullPolicy"]))] = "x"
        if draw(st.integers(0, 5)) == 0:
            task["when"] = draw(expressions())
        return task

    return st.composite(lambda draw: build(draw))()


def sensors() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(
            lambda path, timeout: {"kind": "file", "path": path, "timeout": timeout},
            templated_text(),
            durations(),
        ),
        st.builds(
            lambda pipeline, offset: {
                "kind": "externalTask",
                "pipeline": pipeline,
                "logicalDateOffset": offset,
            },
            st.sampled_from([*GOOD_OBJECT_NAMES[:3], *BAD_OBJECT_NAMES[:6]]),
            durations(),
        ),
        st.builds(
            lambda target: {"kind": "datetime", "targetTime": target},
            st.one_of(dates(), templated_text()),
        ),
    )


@st.composite
def groups(draw: Any, depth: int = 0) -> dict[str, Any]:
    group: dict[str, Any] = {"name": draw(st.sampled_from(GROUP_NAMES))}
    group["tasks"] = draw(st.lists(tasks(TASK_NAMES), max_size=3))
    if depth < 2 and draw(st.booleans()):
        group["groups"] = draw(st.lists(groups(depth + 1), max_size=2))
    if draw(st.integers(0, 3)) == 0:
        group["template"] = {"name": draw(st.sampled_from(["tpl", "twice", "missing"]))}
    if draw(st.booleans()):
        group["dependsOn"] = draw(
            st.lists(st.sampled_from([*TASK_NAMES, *GROUP_NAMES]), max_size=2)
        )
    return group


@st.composite
def params(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(["n", "s", "o", "flag"]), unique=True)):
        declared: dict[str, Any] = {
            "type": draw(
                st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "x"])
            )
        }
        if draw(st.booleans()):
            declared["default"] = draw(json_values())
        if draw(st.integers(0, 4)) == 0:
            declared["enum"] = draw(st.lists(scalars(), max_size=3))
        if draw(st.integers(0, 4)) == 0:
            declared["minimum"] = draw(scalars())
        out[name] = declared
    return out


@st.composite
def valid_manifests(draw: Any) -> dict[str, Any]:
    """A well-formed Pipeline whose values push at the edges: templates over params and
    upstream outputs with every filter, huge and tiny numbers, hostile text, mapping,
    retries and trigger rules. Most of these validate, so the engine runs them."""
    count = draw(st.integers(1, 8))
    names = [f"t{i}" for i in range(count)]
    big = draw(st.sampled_from([1, -7, 10**18, 10**4299, 2**63]))
    declared = {
        "n": {"type": "integer", "default": big},
        "s": {"type": "string", "default": draw(texts())},
        "o": {"type": "array", "default": draw(st.lists(scalars(), max_size=4))},
    }
    task_list = []
    for i, name in enumerate(names):
        ups = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=3)) if i else []
        refs = ["ds", "params.n", "params.s", "params.o", "run_id", "task.try_number"]
        refs += [f"tasks.{u}.outputs.rows" for u in ups]
        text = " ".join(
            "{{ " + draw(st.sampled_from(refs)) + draw(_FILTERS) + " }}"
            for _ in range(draw(st.integers(0, 3)))
        )
        task: dict[str, Any] = {
            "name": name,
            "image": "busybox",
            "command": draw(st.sampled_from([["sh", "-c", "true " + text], ["echo", text]])),
            "retries": draw(st.integers(0, 2)),
            "retryDelay": draw(st.sampled_from(["0s", "1s", "5m"])),
        }
        if ups:
            task["dependsOn"] = ups
            task["triggerRule"] = draw(
                st.sampled_from(["all_success", "all_done", "one_failed", "none_failed", "always"])
            )
        if draw(st.integers(0, 4)) == 0:
            task["expand"] = draw(
                st.one_of(
                    st.builds(lambda v: {"items": v}, st.lists(scalars(), max_size=3)),
                    st.just({"param": "params.o"}),
                )
            )
        if draw(st.integers(0, 4)) == 0:
            task["timeout"] = draw(st.sampled_from(["1s", "1h", "36500d"]))
        if draw(st.integers(0, 5)) == 0:
            task["when"] = "params.n > 0"
        task_list.append(task)
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": draw(st.sampled_from(GOOD_OBJECT_NAMES[:4]))},
        "spec": {"params": declared, "tasks": task_list, "sla": "1h"},
    }


_FILTERS = st.sampled_from(
    ["", " | int", " | float", " | string", " | tojson", " | shquote", " | length",
     " | default(0)", " | upper", " | join(',')", " | first", " | fromjson"]
)  # fmt: skip


@st.composite
def hostile_manifests(draw: Any) -> dict[str, Any]:
    """A Pipeline document with a few hostile parts at a time (most do not validate)."""
    spec: dict[str, Any] = {"tasks": draw(st.lists(tasks(TASK_NAMES), max_size=6))}
    if draw(st.booleans()):
        spec["groups"] = draw(st.lists(groups(), max_size=2))
    if draw(st.booleans()):
        spec["params"] = draw(params())
    if draw(st.booleans()):
        spec["schedule"] = draw(schedules())
    for field, values in (
        ("timezone", timezones()),
        ("startDate", dates()),
        ("endDate", dates()),
        ("sla", durations()),
        ("runTimeout", durations()),
    ):
        if draw(st.integers(0, 4)) == 0:
            spec[field] = draw(values)
    if draw(st.integers(0, 3)) == 0:
        leaf = {
            "name": "tpl",
            "tasks": [{"name": "inner", "image": "busybox", "command": ["true"]}],
        }
        twice = {
            "name": "twice",
            "groups": [
                {"name": "a", "template": {"name": "tpl"}},
                {"name": "b", "template": {"name": "tpl"}},
            ],
        }
        spec["templates"] = [leaf, twice]
    if draw(st.integers(0, 5)) == 0:
        spec["defaults"] = {"image": "busybox", "retryDelay": draw(durations())}
    name = draw(
        st.one_of(
            st.sampled_from(GOOD_OBJECT_NAMES[:4]),
            st.sampled_from(BAD_OBJECT_NAMES),
            st.text(max_size=20),
        )
    )
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": spec,
    }


@st.composite
def one_hostile_value(draw: Any) -> dict[str, Any]:
    """A well-formed manifest with one hostile value: it passes the schema, so every later
    check (schedule, zone, dates, durations, sensors) meets it."""
    doc = draw(valid_manifests())
    spec = doc["spec"]
    where = draw(
        st.sampled_from(
            ["timezone", "schedule", "startDate", "sla", "runTimeout", "task", "sensor"]
        )
    )
    if where == "timezone":
        spec["timezone"] = draw(timezones())
        spec["schedule"] = "@daily"
    elif where == "schedule":
        spec["schedule"] = draw(schedules())
    elif where == "startDate":
        spec["startDate"] = draw(dates())
        spec["schedule"] = "@daily"
    elif where in ("sla", "runTimeout"):
        spec[where] = draw(st.sampled_from(["999999999d", "36500d1s", "1s", "36500d"]))
    elif where == "task":
        field = draw(st.sampled_from(["retryDelay", "timeout", "startTimeout", "maxRetryDelay"]))
        spec["tasks"][0][field] = draw(st.sampled_from(["999999999d", "99999999999999999999w"]))
    else:
        spec["tasks"].append({"name": "wait", "sensor": draw(sensors())})
    return doc


def manifests() -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed manifests, ones with one hostile value, and hostile ones."""
    return st.one_of(valid_manifests(), one_hostile_value(), hostile_manifests())


def output_values() -> st.SearchStrategy[Any]:
    """What a task could leave as an output, for a driver that did not check it: the
    engine's templates and filters must take any of these without raising."""
    return st.one_of(
        scalars(),
        st.sampled_from([float("inf"), float("-inf"), float("nan"), 10**4299 * 9, 10**4300]),
        json_values(),
    )
