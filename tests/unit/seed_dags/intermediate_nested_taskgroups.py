# Seed 000 (INTERMEDIATE track), "Nested TaskGroups".
from kascade.sdk import TaskGroup
from kascade.sdk import DAG, BashOperator
from datetime import datetime

with DAG('nested_taskgroups', start_date=datetime(2023, 10, 1)) as dag:
    
    with TaskGroup('processing') as processing:
        
        # Nested group: Data quality
        with TaskGroup('data_quality') as dq:
            check_nulls = BashOperator(task_id='check_nulls', bash_command='python check_nulls.py')
            check_duplicates = BashOperator(task_id='check_duplicates', bash_command='python check_duplicates.py')
            check_nulls >> check_duplicates
        
        # Nested group: Transformations
        with TaskGroup('transformations') as tf:
            transform_a = BashOperator(task_id='transform_a', bash_command='python transform_a.py')
            transform_b = BashOperator(task_id='transform_b', bash_command='python transform_b.py')
            [transform_a, transform_b]
        
        dq >> tf
