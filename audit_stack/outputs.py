"""The AuditStack's CfnOutput keys, for people and scripts that read the stack's outputs.

The emulator, its fixture and the operator CLI do not use them: they find a pipeline's resources
by the marks in the template (audit_stack.discovery). Kept free of aws_cdk.
"""

TOPIC_ARN = "TopicArn"
QUEUE_URL = "QueueUrl"
DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
TABLE_NAME = "TableName"
PUBLISHER_FUNCTION_NAME = "PublisherFunctionName"
RECORDER_FUNCTION_NAME = "RecorderFunctionName"

ALL = (
    TOPIC_ARN,
    QUEUE_URL,
    DEAD_LETTER_QUEUE_URL,
    TABLE_NAME,
    PUBLISHER_FUNCTION_NAME,
    RECORDER_FUNCTION_NAME,
)
