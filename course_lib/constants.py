"""Column names and shared defaults: the one place notebooks and library agree on spelling.

Not configuration for any stage (each stage has its own settings); only names and a default seed.
"""

SEED = 42  # default seed for every random thing in the kit

# ids
USER = "user_id"
ITEM = "item_id"

# items
TITLE = "title"
CATEGORY = "category"
SUBCATEGORY = "subcategory"
BRAND = "brand"
COLOUR = "colour"
PRICE = "price"
DESCRIPTION = "description"
TEXT = "text"  # what the text encoder reads: built on load from title + description
IMAGE = "image"  # path of the item's image, relative to the dataset folder ("" when none)

# interactions
TIMESTAMP = "timestamp"
EVENT = "event"
WEIGHT = "weight"  # implicit strength of an interaction (view < click < purchase, or a rating)

# ground truth (shop only)
INTEREST = "interest"  # a subcategory name
TIER = "tier"
TIERS = ("core", "secondary", "emerging", "fading")

EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "purchase": 4.0}
