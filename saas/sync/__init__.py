"""Write-behind sync: login events drained from Redis into PostgreSQL in batches."""
