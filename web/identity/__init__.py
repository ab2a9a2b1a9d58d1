"""Identity (登录与用户): users, passwords, access and refresh tokens."""
