"""DynamoDB, ECS, SQS, EventBridge/SNS: the only code that talks to AWS."""
