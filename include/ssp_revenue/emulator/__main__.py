from ssp_revenue.emulator.server import main

main()
