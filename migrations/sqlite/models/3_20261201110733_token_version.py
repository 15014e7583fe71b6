from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" ADD "token_version" INT NOT NULL DEFAULT 0;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" DROP COLUMN "token_version";"""


MODELS_STATE = (
    "eJztXGtT2zgU/Ssaf6IzLAMJhS67szMGQpsWkk4Sym5LxyNiJdHgyK4fDZku/30l+RXbkr"
    "FDCE7WXzpE0pXsc6Wre6Tj/lKmpo4MZ6+HRjZyJgPzHhHlBPxSCJwi+oewfhco0LLiWlbg"
    "wjuDG9h+S81lTXkVvHNcGw5dWjuChoNokY6coY0tF5tsNKVLEMCO4yEdBOaAm++Ce2LOCL"
    "ibA+w64OPNAGAdmMSYgx0IdG9qAXME3Al2AB8fGObYAcSkTWiH5M0eG143h3R8TMYvPpJH"
    "8A8P0TcfI3eCbDret++0GBMdPSAn/GndayOMDD0BM9ZZB7xcc+cWL7u+bp9f8JbsLe60oW"
    "l4UxK3tubuxCRRc8/D+h6zYXVjRJANXaQvgE48wwi8FBb5T0wLXNtD0aPqcYGORtAzmOuU"
    "P0ceGTKPAT4S++fwr+DRFpppWqc70PqtgaYpGU+zR0i5JCgamoTNEkxcBtSvR7/fGBBeqr"
    "ABzj6ovZ3m0RsOgem4Y5tXcriUR24IXeibctBjlEdwio15GaRji1WiHRbkwB0iVTFsYyzR"
    "g4VprQbdLJ7nFAsXT5EY06RlClc9MN0L/1gNvnHgeV2AB+2rVn+gXn1m3U8d54fB8VIHLV"
    "bT4KXzVOmO7w+TxlA/xEadgJv24ANgP8HXbqeV9lrUbvBVYc8EPdfUaJjToL6ISVgcFiXc"
    "7DlIX8LHC2YrcHCwOmr/rt6/NvpJ979lXJy0rL1cZS8PbcRwX8LLScstDNZ0HkO9SxO9YA"
    "ZuiNuDxfJU7LY1UWbZJq40bIcWKVdTuDbRuWP2EL81Dg6PD981jw7f0Sb8QaOS4xx/tzsD"
    "mvSwnH10L8wnGVxZdC9MG+Ex+YTmHOQ2fSJIhkgAakCuroNuNgzcx3D2hKXxtLThLCI5i5"
    "OKvjt9Y+Tytz9T+2fqeUvhCN/B4f0M2rqWgJrVmA0zVRK1zVZNG9N0CSRwzMFhb8GeOaK0"
    "PzGaKUKyy2t282kua1OC3/oGjEVCMDNtfRfMsEvZ5wQBZzhBukdJ5R0a0bkDINEBHLnIpl"
    "wU7CBiemNGU2kXlgEZQZUQ29UP8TSj/aawkVhbf3R/q6CNvkWrI6qgYHwvxYClcapoiAqm"
    "4/OYb8Xj024O4aU4sOEzwJ5NoN0i3jQToJIZXmSdQpq+QnXilaK+V9udEwDHFNZbQhns+Q"
    "mg76ffkvfdLv17bJr075ba/+cEIOjM02tH4popfNAMRMbuhP58m+OGL2qP8+a3qZ2+E1Q0"
    "WM1jOuuO1kr5tHvRdAszsg3JwIrSqyj2CR39hJN9szwnb5eDmdNSa0X3WByirz91SuwQKa"
    "ulstmKEdLVbBYxsDTqu0jzE4Jlt4h0H5XeKDqtG2qHZrfksqX2Ou3O+xNgIGgTivot6bW+"
    "tFkDf+2x33ErG4Xtltk8DvYL7B4H+9Ltg1WlXYcsqef6U2gY0oWRMt2ihdFsHB9Fa4L9yF"
    "sO/Sv18lK4Ju6wgd25FN0Lw4RSaLPGKXxHzHrzEM6L2N3r08sW+NxrnbX77W4nuQfzSlZE"
    "C7BP+3ot9TId4vFohIf0iZeCXWhd414Ed08e//Oz0KRlnYRWOgk1oONqUUq5nMNlfdTn/l"
    "X2vJ+e8YOe52V4URd1gre+BE/itwL5ncxddXoXZmgSbAtldzJ0iyYZG7TXrTi7K4+6yLiG"
    "vWhyJ8H76dxOhnWd2lVrg6+veFd9Ksaus8ohumBRI/r0pXl4X/jMS/OboJsNA7fopfnCpB"
    "JfmqejwAogrXUIr6FD4KgLVAihN+QaBPZCBRUIqs+DkP0H4C9O8eTSdR8Fh2kEsM1FAw7X"
    "Bvjq/azM4Bn9rFgdX2sDnqkNQFOIDfGpgES3HRqs5gzgdcFN8PdmowiBp62kDJ7XJRMJCz"
    "oOj+IT6EzK4JwxrPKZy5KIN94WUVTQVlLEeV2K8SAH20jXbBqKCH++7J6YwzRF1uukmvt7"
    "v7/sDvlSTLNWF8tn/faqi3mIGpoeEXg9nytFRuujS/uV3qRjUHm+pP2keZ0wfElxzdjV0A"
    "ppqDzFX9Rspb9gTTrhNLC/+NRDBpTsFJLvZjcsfMmolUDj9mygQs31NkLECdHzANqy847H"
    "l6TUHCsBpQ4xlFPqyFFFKDVrDCBgNBxgJ7ppDGT37Dvyi36vH2nvRWx6mS4ERDoW2/MN9h"
    "5xkbMBydijCPmq+4RoP2y+kIAlNPv8DsCt5frrpeTio1E5UwzbbyFBPNgvdqeed6meoeSL"
    "i6MMxqHNFuLcLIRzMwfnZhZn+syYYDEDlyOdtNpCrOmMLDipc2d1Bm70AKeWIdFwS87yYp"
    "OlgK6aRGQtOEf7aQmgF23WN6UVZT1AHxWBOX1GsQDyUSZyRHKPLMj5uqek5frob/Nlc41V"
    "qJ5cOBaQD/mcDduvcb6C9UzY40KB4TgnLhxnw0J9/ClHf3uPPz1LX9LrScva61XxukBwlT"
    "nI4WpocSwtKKVec2Al/qHa/1NFHZxilFyfsdUWrs3NXYvCrxt8RXbWw0V03AIP15+Jie53"
    "R47taHmZeQ7aAtsa8wKYs884ylKg0Kb+6CN1P2WV+Z8Dwub1DWoaSANaDioDZWxQg5kFc/"
    "GDyvJZisi+/hizyulK/a1G/d/xbbYMvtZ8vKKoQUU2Hk4UgawhqNnNEzbAuM1TygY5DLWE"
    "v1p6AalOUH62L5cIbsMN64vIytmiKoFw0HwL0X0RTQYdkentswh/7Hc7kmuT2CSd8eKhC/"
    "4FBnY2MT3KAZeBkchzQ0x3rtS/03CfXXZP0wks6+C0nCJ29ZvZ439J69jD"
)
