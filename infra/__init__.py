"""The CDK app: constructs that deploy the runbooks (functions, state machines, triggers, topics, alarms, IAM).

``infra.names`` is import-light (no aws_cdk) so the CLI can share the naming rules with the stack.
"""

import os

# Node 20 still runs the CDK here; its end-of-life banner would drown every synth's output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
