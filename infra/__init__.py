"""The CDK app: constructs that deploy the runbooks (functions, state machines, triggers, topics, alarms, IAM).

``infra.names`` is import-light (no aws_cdk) so the CLI can share the naming rules with the stack.
"""
