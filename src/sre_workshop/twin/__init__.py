"""The AWS twin: moto with the behaviour AWS has and moto lacks (alarm evaluation, ...)."""
