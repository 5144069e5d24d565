"""HTTP plumbing under the core: the streamed urllib3 transport, proxies, TLS, compression,
base URLs and header checks. Nothing here knows a wire API or a plugin."""
