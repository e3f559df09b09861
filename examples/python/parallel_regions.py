"""Python twin of manifests/examples/parallel-regions.yaml.

A static fan-out built in a loop, dynamic task mapping over a run param
(``dag.param``) and over a literal list (``.partial().expand()``), and a fan-in
that receives the mapped task's values as lists.
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, Param, task

with DAG(
    dag_id="parallel_regions",
    description="Process three regions in parallel, score each with a mapped task, merge, report.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"regions": Param(["us", "eu", "asia"], type="array")},
    tags=["example", "parallel", "mapping"],
) as dag:
    extract_all = BashOperator(
        task_id="extract_all", bash_command="echo fetch all regions for {{ ds }}"
    )

    @task
    def process(region, rows):
        print(f"process {region}")
        return rows

    processed = {}
    for region, rows in (("us", 300), ("eu", 200), ("asia", 100)):
        processed[region] = process.override(task_id=f"process_{region}")(region, rows)
        extract_all >> processed[region]

    @task(multiple_outputs=True)
    def score_region(region, ti=None):
        score = len(region) * 10  # us -> 20, eu -> 20, asia -> 40
        print(f"instance {ti.map_index}: scoring {region} -> {score}")
        return {"region": region, "score": score}

    scored = score_region.expand(region=dag.param("regions"))
    extract_all >> scored

    @task(multiple_outputs=True)
    def merge(rows, regions, scores):
        assert regions == ["us", "eu", "asia"], regions
        assert scores == [20, 20, 40], scores
        total = sum(rows)
        print("merged", total, "rows; scores:", dict(zip(regions, scores, strict=True)))
        return {"rows": total, "best": regions[scores.index(max(scores))]}

    merged = merge(list(processed.values()), scored["region"], scored["score"])
    archive = BashOperator.partial(task_id="archive", max_active_tis_per_dag=2).expand(
        bash_command=[f"echo archive {r}" for r in ("us", "eu", "asia")]
    )
    send_report = BashOperator(
        task_id="send_report",
        bash_command='echo "report: $ROWS rows, best region $BEST"',
        env={"ROWS": merged["rows"], "BEST": merged["best"]},  # data in env, not in code
    )
    merged >> archive >> send_report
