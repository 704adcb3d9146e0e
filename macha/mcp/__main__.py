from macha.mcp.main import main

main()
