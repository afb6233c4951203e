"""sre-workshop: run the AIML301 SRE workshop architecture on AWS or on one machine, and break it on purpose."""

__version__ = "0.1.0"
