"""Pieces both workshop apps share: JSON logging and the DynamoDB session.

Packaged into sre-app.zip and crm-app.zip beside each app, so each zip stays self-contained.
"""
