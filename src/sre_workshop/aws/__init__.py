"""The AWS side of the tool: packaging the assets, deploying and destroying the CloudFormation stack."""
