"""Python twin of manifests/examples/file-sensor.yaml: a FileSensor in reschedule mode.

On Kubernetes every task mounts the node directory /tmp/kascade-landing
(hostPath, given once in default_args), so the producer, the sensor and the
consumer see the same files; the producer runs as root to write there.
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, FileSensor

LANDING = "/tmp/kascade-landing"

default_args = {
    "volumes": [{"name": "landing", "hostPath": {"path": LANDING, "type": "DirectoryOrCreate"}}],
    "volume_mounts": [{"name": "landing", "mountPath": LANDING}],
}

with DAG(
    dag_id="file_sensor",
    description="Wait for the day's orders file to land, then process it.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=default_args,
    tags=["example", "sensors"],
) as dag:
    produce_orders = BashOperator(
        task_id="produce_orders",
        security_context={"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False},
        bash_command=f"""
dir="{LANDING}/{{{{ run_id }}}}"
sleep 1
mkdir -p "$dir"
printf 'order_id,amount\\n1,9.99\\n2,20.00\\n3,4.50\\n' > "$dir/orders.csv.part"
chmod -R a+rwX "$dir"
mv "$dir/orders.csv.part" "$dir/orders.csv"
echo "dropped $dir/orders.csv"
""",
    )
    # No upstream: it starts with the producer and pokes until the file exists.
    wait_for_orders = FileSensor(
        task_id="wait_for_orders",
        filepath=LANDING + "/{{ run_id }}/orders.csv",
        poke_interval=1,
        timeout=60,
        mode="reschedule",
    )
    process_orders = BashOperator(
        task_id="process_orders",
        bash_command=f"""
file="{LANDING}/{{{{ run_id }}}}/orders.csv"
rows=$(( $(wc -l < "$file") - 1 ))
echo "File found! Processing $rows orders from $file"
rm -f "$file" && rmdir "$(dirname "$file")" 2>/dev/null || true
echo "$rows"
""",
    )
    wait_for_orders >> process_orders
