"""Control: the activity condition every change notifies, moto's lock and SQS's virtual clock,
and the idle scheduler behind run_until_idle."""
