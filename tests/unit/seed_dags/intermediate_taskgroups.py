# Seed 000 (INTERMEDIATE track), "Solution: TaskGroups".
from kascade.sdk import TaskGroup
from kascade.sdk import DAG, BashOperator
from datetime import datetime

with DAG('etl_with_taskgroups', start_date=datetime(2023, 10, 1)) as dag:
    
    start = BashOperator(task_id='start', bash_command='echo "Start"')
    
    # Group 1: Extract
    with TaskGroup('extract_group') as extract:
        extract_db = BashOperator(task_id='extract_db', bash_command='python extract_db.py')
        extract_api = BashOperator(task_id='extract_api', bash_command='python extract_api.py')
        extract_files = BashOperator(task_id='extract_files', bash_command='python extract_files.py')
        
        # Dependencies within group
        [extract_db, extract_api, extract_files]
    
    # Group 2: Transform
    with TaskGroup('transform_group') as transform:
        clean = BashOperator(task_id='clean', bash_command='python clean.py')
        validate = BashOperator(task_id='validate', bash_command='python validate.py')
        aggregate = BashOperator(task_id='aggregate', bash_command='python aggregate.py')
        
        clean >> validate >> aggregate
    
    # Group 3: Load
    with TaskGroup('load_group') as load:
        load_warehouse = BashOperator(task_id='load_warehouse', bash_command='python load_warehouse.py')
        load_cache = BashOperator(task_id='load_cache', bash_command='python load_cache.py')
        
        [load_warehouse, load_cache]
    
    end = BashOperator(task_id='end', bash_command='echo "End"')
    
    # Dependencies between groups
    start >> extract >> transform >> load >> end
