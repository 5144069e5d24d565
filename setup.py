from setuptools import setup

# Metadata lives in setup.cfg; this shim keeps older pip/setuptools editable installs working.
setup()
