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
SEALER_FUNCTION_NAME = "SealerFunctionName"
DIGEST_TABLE_NAME = "DigestTableName"
SIGNING_KEY_ARN = "SigningKeyArn"
ALARM_TOPIC_ARN = "AlarmTopicArn"

ALL = (
    TOPIC_ARN,
    QUEUE_URL,
    DEAD_LETTER_QUEUE_URL,
    TABLE_NAME,
    PUBLISHER_FUNCTION_NAME,
    RECORDER_FUNCTION_NAME,
    SEALER_FUNCTION_NAME,
    DIGEST_TABLE_NAME,
    SIGNING_KEY_ARN,
    ALARM_TOPIC_ARN,
)

# Only in some configurations: without them the CLI knows the stack has no pseudonym secret
# (subject_in_clear) or no by-type index.
PSEUDONYM_SECRET_ARN = "PseudonymSecretArn"
EVENT_TYPE_INDEX_SHARDS = "EventTypeIndexShards"
OPTIONAL = (PSEUDONYM_SECRET_ARN, EVENT_TYPE_INDEX_SHARDS)
