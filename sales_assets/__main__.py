from sales_assets.cli import main

main()
