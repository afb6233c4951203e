"""Pieces both workshop apps share: settings from the environment, JSON logging, the request log, the DynamoDB
session and the run-time fault controls (chaos).

Packaged into sre-app.zip and crm-app.zip beside each app, so each zip stays self-contained.
"""
