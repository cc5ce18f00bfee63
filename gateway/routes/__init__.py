"""The gateway's endpoints, one module per area; GatewayService combines them."""
