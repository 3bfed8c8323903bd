"""Known Ethereum mainnet protocol contracts, by exact address.

The feature code names a protocol only when a wallet sent a transaction to one
of these exact addresses. Prefix or partial matches are never used, because
anyone can deploy a contract whose address shares a prefix with a famous one.

Each entry names the contract and where its address was checked. "Public
label lists" means open-source projects that label mainnet addresses give
this name for the address. Addresses are for chain id 1 only: the same address on another chain
may belong to someone else.
"""

from __future__ import annotations

from types import MappingProxyType

MAINNET_CHAIN_ID = "1"

# Lower-case address -> protocol name. The protocol name is also a label the
# model prompt may show, so it must be a fixed, short, human-written string.
KNOWN_CONTRACTS = MappingProxyType(
    {
        # Uniswap V2 Router02; docs.uniswap.org, "V2 Deployment Addresses".
        "0x7a250d5630b4cf539739df2c5dacb4c659f2488d": "Uniswap",
        # Uniswap V3 SwapRouter; Uniswap/v3-periphery, deploys.md.
        "0xe592427a0aece92de3edee1f18e0157c05861564": "Uniswap",
        # Uniswap SwapRouter02 (swap-router-contracts); public label lists.
        "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45": "Uniswap",
        # Uniswap Universal Router V1, V1_2 and V2; Uniswap/universal-router,
        # deploy-addresses/mainnet.json.
        "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b": "Uniswap",
        "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad": "Uniswap",
        "0x66a9893cc07d91d95644aedd05d03f95e1dba8af": "Uniswap",
        # 1inch Aggregation Router v4; public label lists ("1inch v4: Router").
        "0x1111111254fb6c44bac0bed2854e76f90643097d": "1inch",
        # 1inch Aggregation Router v5; 1inch-sdk-go, AggregationRouterV5.
        "0x1111111254eeb25477b68fb85ed929f73a960582": "1inch",
        # 1inch Aggregation Router v6; Superform docs, OneInchValidator.
        "0x111111125421ca6dc452d289314280a0f8842a65": "1inch",
        # Aave V2 LendingPool; public integrations citing the Aave V2 docs.
        "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9": "Aave",
        # Aave V3 Pool (Ethereum market); bgd-labs/aave-address-book, AaveV3Ethereum.
        "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2": "Aave",
        # Compound V2 Comptroller (Unitroller proxy); public integrations.
        "0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b": "Compound",
        # Compound V3 cUSDCv3 (Comet, USDC market); public integrations.
        "0xc3d688b66703497daa19211eedff47f25384cdc3": "Compound",
        # Curve 3pool StableSwap; docs linking curve-contract pools/3pool.
        "0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7": "Curve",
        # Lido stETH token, which is also the staking entry point; token lists.
        "0xae7ab96520de3a18e5e111b5eaab095312d7fe84": "Lido",
        # MetaMask Swap Router; public label lists ("MetaMask Swap Router").
        "0x881d40237659c251811cec9c364ef91dc08d300c": "MetaMask Swaps",
        # Polygon PoS bridge RootChainManager proxy; public bridge integrations.
        "0xa0c68c638235ee32657e8f720a23cec1bfc77c77": "Polygon Bridge",
        # Polygon Plasma bridge DepositManager proxy; public bridge integrations.
        "0x401f6c983ea34274ec46f84d70b31c151321188b": "Polygon Bridge",
        # Optimism L1StandardBridge proxy; public bridge integrations.
        "0x99c9fc46f92e8a1c0dec1b1747d010903e884be1": "Optimism Bridge",
        # Stargate Router (v1); Stargate SDK router table, Ethereum entry.
        "0x8731d54e9d02c286767d56ac03e8037c07e01e98": "Stargate",
        # OpenSea Wyvern Exchange v1; public label lists ("OpenSea (Legacy)").
        "0x7be8076f4ea4a4ad08075c2508e481d6c946d12b": "OpenSea",
        # ENS Public Resolver 2; docs quoting the Etherscan label "ENS: Public Resolver 2".
        "0x4976fb03c32e5b8cfe2b6ccb31c09ba78ebaba41": "ENS",
        # ENS reverse registrar (setName); public label lists ("ENS").
        "0x084b1c3c81545d370f3634392de611caabff8148": "ENS",
    }
)


def protocol_at(address: str, chain_id: str) -> str | None:
    """Return the protocol name of the contract at ``address``, or None.

    ``chain_id`` "" (no chain id sent, as with a Blockscout URL) is treated as
    mainnet. Any other chain id returns None, because the table lists mainnet
    contracts only.
    """
    if chain_id not in (MAINNET_CHAIN_ID, ""):
        return None

    return KNOWN_CONTRACTS.get(address.lower())
