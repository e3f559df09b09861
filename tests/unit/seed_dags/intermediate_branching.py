# Seed 000 (INTERMEDIATE track), "BranchPythonOperator".
from kascade.sdk import BranchPythonOperator
from kascade.sdk import BashOperator
from kascade.sdk import DAG
from datetime import datetime

def decide_branch(**context):
    """Decide which branch to take"""
    execution_date = context['execution_date']
    
    # If weekend → run weekend_task
    if execution_date.weekday() in [5, 6]:  # Saturday=5, Sunday=6
        return 'weekend_task'
    else:
        return 'weekday_task'

with DAG('branching_example', start_date=datetime(2023, 10, 1)) as dag:
    
    start = BashOperator(task_id='start', bash_command='echo "Start"')
    
    branch = BranchPythonOperator(
        task_id='decide_branch',
        python_callable=decide_branch,
    )
    
    weekday_task = BashOperator(
        task_id='weekday_task',
        bash_command='echo "Running weekday processing"',
    )
    
    weekend_task = BashOperator(
        task_id='weekend_task',
        bash_command='echo "Running weekend processing"',
    )
    
    end = BashOperator(
        task_id='end',
        bash_command='echo "End"',
        trigger_rule='none_failed_or_skipped',  # Run even if branch skipped
    )
    
    start >> branch >> [weekday_task, weekend_task] >> end
