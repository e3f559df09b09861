"""Building DAGs with kascade.sdk: Airflow's dependency, group, TaskFlow and default_args rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kascade.sdk import (
    DAG,
    AirflowDagCycleException,
    BashOperator,
    BranchPythonOperator,
    DuplicateTaskIdFound,
    EmailOperator,
    EmptyOperator,
    ExternalTaskSensor,
    FileSensor,
    Param,
    PythonOperator,
    PythonVirtualenvOperator,
    ShortCircuitOperator,
    SqlSensor,
    TaskGroup,
    TriggerDagRunOperator,
    TriggerRule,
    UnsupportedFeature,
    XComArg,
    chain,
    cross_downstream,
    dag,
    task,
    task_group,
)
from kascade.sdk.mapped import MappedArg


def edges(d: DAG) -> set[tuple[str, str]]:
    return {(up, t.task_id) for t in d.tasks for up in t.upstream_task_ids}


def empty(task_id: str) -> EmptyOperator:
    return EmptyOperator(task_id=task_id)


def test_shift_operators_lists_and_return_values() -> None:
    with DAG("d") as d:
        a, b, c, e = empty("a"), empty("b"), empty("c"), empty("e")
        assert (a >> [b, c]) == [b, c]
        [b, c] >> e
        e << empty("f")
        a.set_downstream(empty("g"))
    assert edges(d) == {("a", "b"), ("a", "c"), ("b", "e"), ("c", "e"), ("f", "e"), ("a", "g")}
    with pytest.raises(TypeError, match="cannot set a dependency"):
        a >> "b"  # type: ignore[operator]


def test_chain_pairs_lists_and_cross_downstream_connects_all() -> None:
    with DAG("d") as d:
        a, b1, b2, c1, c2, z = (empty(n) for n in ("a", "b1", "b2", "c1", "c2", "z"))
        chain(a, [b1, b2], [c1, c2], z)
    assert edges(d) == {
        ("a", "b1"),
        ("a", "b2"),
        ("b1", "c1"),
        ("b2", "c2"),
        ("c1", "z"),
        ("c2", "z"),
    }
    with DAG("e") as e:
        x, y, p, q = empty("x"), empty("y"), empty("p"), empty("q")
        cross_downstream([x, y], [p, q])
        with pytest.raises(ValueError, match="equal length"):
            chain([x], [p, q])
    assert edges(e) == {("x", "p"), ("x", "q"), ("y", "p"), ("y", "q")}


def test_task_groups_prefix_ids_and_link_roots_and_leaves_at_call_time() -> None:
    with DAG("d") as d:
        start = empty("start")
        with TaskGroup("etl") as etl:
            extract = empty("extract")
            with TaskGroup("inner") as inner:
                clean = empty("clean")
            extract >> inner
        with TaskGroup("flat", prefix_group_id=False):
            empty("not_prefixed")
        start >> etl
        later = empty("later")
    assert extract.task_id == "etl.extract" and clean.task_id == "etl.inner.clean"
    assert "not_prefixed" in d.task_dict
    assert etl.roots == [extract] and etl.leaves == [clean]
    assert edges(d) == {("start", "etl.extract"), ("etl.extract", "etl.inner.clean")}
    assert later.upstream_task_ids == set()


def test_task_group_decorator_returns_the_last_task_or_the_group() -> None:
    @task
    def step(x: int) -> int:
        return x

    @task_group
    def pipeline_part(x: int):  # type: ignore[no-untyped-def]
        return step(step(x))

    @task_group(group_id="noop")
    def no_return():  # type: ignore[no-untyped-def]
        empty("inside")

    with DAG("d") as d:
        first = pipeline_part(1)
        second = pipeline_part(2)
        group = no_return()
    assert isinstance(first, XComArg) and first.operator.task_id == "pipeline_part.step__1"
    assert second.operator.task_id == "pipeline_part__1.step__1"
    assert isinstance(group, TaskGroup) and "noop.inside" in d.task_dict


def test_taskflow_calls_create_edges_ids_and_multiple_outputs() -> None:
    @task
    def extract() -> dict[str, int]:
        return {"rows": 1}

    @task
    def load(rows: int, extra: int = 0) -> None:
        return None

    with DAG("d") as d:
        data = extract()
        load(data["rows"])
        load(data["rows"], extra=2)
        with pytest.raises(TypeError, match=r"load\(\): .*unexpected keyword"):
            load(data, nope=1)
    assert set(d.task_dict) == {"extract", "load", "load__1"}
    assert d.task_dict["extract"].multiple_outputs  # inferred from the dict return type
    assert edges(d) == {("extract", "load"), ("extract", "load__1")}
    assert data["rows"].key == "rows"
    assert str(data["rows"]) == "{{ tasks.extract.outputs.rows }}"
    with pytest.raises(TypeError, match="not iterable"):
        list(data)


def test_xcom_args_in_templated_fields_are_upstream() -> None:
    with DAG("d") as d:
        src = BashOperator(task_id="src", bash_command="echo 1")
        BashOperator(task_id="dst", bash_command="cat", env={"X": src.output})
        PythonOperator(task_id="py", python_callable=print, op_kwargs={"v": src.output["k"]})
    assert edges(d) == {("src", "dst"), ("src", "py")}


def test_default_args_layers_dag_group_operator() -> None:
    with DAG("d", default_args={"retries": 3, "pool": "p", "owner": "x"}) as d:
        plain = empty("plain")
        with TaskGroup("g", default_args={"retries": 1}):
            in_group = empty("in_group")
            own = EmptyOperator(task_id="own", retries=7, default_args={"pool": "q"})
    assert (plain.retries, plain.pool, plain.owner) == (3, "p", "x")
    assert (in_group.retries, in_group.pool) == (1, "p")
    assert (own.retries, own.pool) == (7, "q")
    assert d.task_dict["g.own"] is own


def test_custom_operator_with_positional_args_gets_defaults() -> None:
    class Upsert(BashOperator):
        def __init__(self, table, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, bash_command=f"echo {table}", **kwargs)
            self.table = table

    with DAG("d", default_args={"retries": 2, "retry_delay": timedelta(minutes=1)}):
        op = Upsert("users", task_id="upsert")
    assert op.retries == 2 and op.retry_delay == timedelta(minutes=1) and op.table == "users"


def test_unknown_arguments_and_duplicates_are_errors() -> None:
    with DAG("d"):
        with pytest.raises(
            Exception, match=r"Invalid arguments were passed to EmptyOperator.*colour"
        ):
            EmptyOperator(task_id="x", colour="red")
        empty("once")
        with pytest.raises(DuplicateTaskIdFound):
            empty("once")


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: empty("x").__class__(task_id="y", depends_on_past=True), "depends_on_past"),
        (lambda: EmptyOperator(task_id="y", queue="gpu"), "queue"),
        (lambda: EmptyOperator(task_id="y", executor_config={"x": 1}), "executor_config"),
        (
            lambda: EmailOperator(
                task_id="y", to="a@b.c", subject="s", html_content="h", files=["r.csv"]
            ),
            r"EmailOperator\(files=",
        ),
        (
            lambda: TriggerDagRunOperator(
                task_id="y", trigger_dag_id="other", skip_when_already_exists=True
            ),
            "skip_when_already_exists",
        ),
        (
            lambda: SqlSensor(task_id="y", conn_id="c", sql="select 1", fail_on_empty=True),
            r"SqlSensor\(fail_on_empty=",
        ),
        (
            lambda: PythonVirtualenvOperator(task_id="y", python_callable=print),
            "PythonVirtualenvOperator",
        ),
        (lambda: task.virtualenv(lambda: None), "@task.virtualenv"),
        (
            lambda: ShortCircuitOperator(
                task_id="y", python_callable=bool, ignore_downstream_trigger_rules=False
            ),
            "ignore_downstream_trigger_rules",
        ),
        (
            lambda: BashOperator(task_id="y", bash_command="x", skip_on_exit_code=3),
            "skip_on_exit_code",
        ),
        (lambda: FileSensor(task_id="y", filepath="/x", fs_conn_id="other"), "fs_conn_id"),
        (
            lambda: ExternalTaskSensor(task_id="y", external_dag_id="o", execution_date_fn=len),
            "execution_date_fn",
        ),
        (
            lambda: EmptyOperator(task_id="y", trigger_rule="all_done_setup_success"),
            "all_done_setup_success",
        ),
        (lambda: Param(1, pattern="x"), "pattern"),
    ],
)
def test_unsupported_features_fail_when_the_file_is_parsed(build, names) -> None:  # type: ignore[no-untyped-def]
    with DAG("d"), pytest.raises(UnsupportedFeature, match=names) as info:
        build()
    assert "is not supported by kascade.sdk" in str(info.value)


def test_email_off_is_fine_and_renamed_trigger_rules_map() -> None:
    with DAG(
        "d", default_args={"email": ["a@b.c"], "email_on_failure": False, "email_on_retry": False}
    ):
        op = EmptyOperator(task_id="x", trigger_rule="none_failed_or_skipped")
    assert op.trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def test_cycles_are_reported_with_the_path() -> None:
    with DAG("d") as d:
        a, b, c = empty("a"), empty("b"), empty("c")
        a >> b >> c >> a
    with pytest.raises(AirflowDagCycleException, match=r"cycle in DAG 'd': . -> . -> . -> ."):
        d.topological_sort()


def test_mapping_placeholders_and_inputs() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def numbers() -> list[int]:
        return [1, 2]

    with DAG("d") as d:
        literal = add.partial(y=1).expand(x=[1, 2, 3]).operator
        product = add.expand(x=[1, 2], y=[10, 20]).operator
        from_upstream = add.partial(y=0).expand(x=numbers()).operator
        mapped_bash = BashOperator.partial(task_id="b").expand(bash_command=["echo 1", "echo 2"])
        with pytest.raises(UnsupportedFeature, match="expand_kwargs"):
            add.expand(x=numbers(), y=[1])
        with pytest.raises(UnsupportedFeature, match="map a @task"):
            BashOperator.partial(task_id="c", bash_command="x").expand(env=[{"A": "1"}])
    assert literal.expand_input.items == [1, 2, 3]
    assert isinstance(literal.op_kwargs["x"], MappedArg) and literal.op_kwargs["y"] == 1
    assert product.expand_input.items == [
        {"x": 1, "y": 10},
        {"x": 1, "y": 20},
        {"x": 2, "y": 10},
        {"x": 2, "y": 20},
    ]
    assert from_upstream.expand_input.expression == "tasks.numbers.outputs.return_value"
    assert ("numbers", from_upstream.task_id) in edges(d)
    assert mapped_bash.bash_command == "{{ item }}"


def test_dag_decorator_turns_arguments_into_params() -> None:
    @dag(schedule="@daily", start_date=datetime(2024, 1, 1))
    def my_pipeline(limit: int = 5, name: str = "x"):  # type: ignore[no-untyped-def]
        """Docs of the DAG."""
        BashOperator(task_id="t", bash_command=f"echo {limit}")

    built = my_pipeline(limit=7)
    assert built.dag_id == "my_pipeline" and built.doc_md == "Docs of the DAG."
    assert built.params["limit"].value == 7 and built.params["name"].value == "x"
    assert built.task_dict["t"].bash_command == "echo {{ params.limit }}"


def test_branch_operator_outputs() -> None:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="b", python_callable=lambda: None)
    assert branch.outputs_of(None) == {"branch": []}
    assert branch.outputs_of("x") == {"return_value": "x", "branch": ["x"]}
    assert branch.outputs_of(["x", "y"])["branch"] == ["x", "y"]
    with pytest.raises(TypeError):
        branch.outputs_of(3)


def test_edge_labels_draw_the_edge() -> None:
    from kascade.sdk import Label

    with DAG("d") as d:
        a, b, c, e = empty("a"), empty("b"), empty("c"), empty("e")
        a >> Label("big files") >> b
        [b, c] >> Label("then") >> e
    assert edges(d) == {("a", "b"), ("b", "e"), ("c", "e")}
