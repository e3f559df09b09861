# Seed 000 (INTERMEDIATE track), "ExternalTaskSensor".
from kascade.sdk import ExternalTaskSensor
from kascade.sdk import DAG, BashOperator

# DAG 1: Upstream pipeline
with DAG('upstream_pipeline', schedule_interval='@daily') as dag1:
    task_a = BashOperator(task_id='task_a', bash_command='echo "Upstream"')

# DAG 2: Downstream pipeline (waits for DAG 1)
with DAG('downstream_pipeline', schedule_interval='@daily') as dag2:
    
    # Wait for upstream DAG to complete
    wait_for_upstream = ExternalTaskSensor(
        task_id='wait_for_upstream',
        external_dag_id='upstream_pipeline',
        external_task_id='task_a',  # Wait for specific task (None = wait for DAG)
        poke_interval=60,
        timeout=3600,
    )
    
    task_b = BashOperator(task_id='task_b', bash_command='echo "Downstream"')
    
    wait_for_upstream >> task_b
