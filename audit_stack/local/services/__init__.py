"""The APIs the emulator answers itself instead of moto: Lambda's Invoke, CloudFormation's read
API for the deployed stack, SQS message move tasks, and NotImplemented for skipped services."""
