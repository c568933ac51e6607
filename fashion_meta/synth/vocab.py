"""Static vocabulary of the synthetic shop: H&M-style product types, indexes, colours, patterns and words.

Every word that carries taste has a ``youth`` weight (positive: young shoppers like it, negative: older
shoppers do); the generator turns these into latent effects, so the text of a description is informative.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCT_GROUPS = (
    "Garment Upper body",
    "Garment Lower body",
    "Garment Full body",
    "Shoes",
    "Accessories",
    "Underwear",
    "Swimwear",
    "Nightwear",
)


@dataclass(frozen=True)
class CategorySpec:
    """One product type (a category) and the facts its articles inherit."""

    name: str
    group: str
    kind: str  # key into KINDS: which fits, materials and features describe it
    nouns: tuple[str, ...]
    youth: float  # -1 (older shoppers) .. +1 (young shoppers)
    gender: str  # "w": womenswear only, "u": sold in every line
    season: float  # +1 summer peak, -1 winter peak, 0 all year
    basic: float  # 0..1: how likely it is re-bought and bought in several pieces
    price_lo: float  # list price range, in H&M file units times 590
    price_hi: float
    garment_groups: tuple[str, ...]


def _cat(name, group, kind, nouns, youth, gender, season, basic, lo, hi, ggroups) -> CategorySpec:
    return CategorySpec(name, group, kind, tuple(nouns.split("|")), youth, gender, season, basic, lo, hi,
                        tuple(ggroups.split("|")))


_UP, _LO, _FULL = PRODUCT_GROUPS[0], PRODUCT_GROUPS[1], PRODUCT_GROUPS[2]
_SHOE, _ACC, _UND, _SWIM, _NIGHT = PRODUCT_GROUPS[3:]

# Ordered roughly by how many articles H&M has of each type: the first N are used for `categories=N`.
CATEGORIES: tuple[CategorySpec, ...] = (
    _cat("Trousers", _LO, "bottom", "trousers", 0.0, "u", 0.0, 0.1, 14.99, 49.99, "Trousers|Trousers Denim"),
    _cat("Dress", _FULL, "onepiece", "dress", 0.1, "w", 0.4, 0.0, 14.99, 59.99, "Dresses Ladies|Jersey Fancy"),
    _cat("Sweater", _UP, "knit", "jumper|sweater", 0.0, "u", -0.8, 0.0, 12.99, 49.99, "Knitwear"),
    _cat("T-shirt", _UP, "jersey", "T-shirt", 0.4, "u", 0.3, 0.6, 4.99, 19.99, "Jersey Basic|Jersey Fancy"),
    _cat("Top", _UP, "jersey", "top", 0.5, "w", 0.3, 0.3, 5.99, 24.99, "Jersey Fancy|Jersey Basic"),
    _cat("Blouse", _UP, "woven", "blouse", -0.7, "w", 0.0, 0.0, 14.99, 39.99, "Blouses"),
    _cat("Jacket", _UP, "outer", "jacket", 0.1, "u", -0.5, 0.0, 29.99, 99.99, "Outdoor|Dressed"),
    _cat("Shorts", _LO, "bottom", "shorts", 0.5, "u", 1.0, 0.1, 9.99, 29.99, "Shorts|Trousers Denim"),
    _cat("Shirt", _UP, "woven", "shirt", -0.3, "u", 0.0, 0.1, 14.99, 39.99, "Shirts|Blouses"),
    _cat("Vest top", _UP, "jersey", "vest top", 0.6, "w", 0.8, 0.6, 4.99, 14.99, "Jersey Basic"),
    _cat("Skirt", _LO, "skirt", "skirt", -0.1, "w", 0.3, 0.0, 12.99, 39.99, "Skirts"),
    _cat("Hoodie", _UP, "jersey", "hoodie", 1.0, "u", -0.3, 0.1, 14.99, 39.99, "Jersey Fancy"),
    _cat("Bra", _UND, "lingerie", "bra", 0.2, "w", 0.0, 0.8, 9.99, 29.99, "Under-, Nightwear"),
    _cat("Socks", _UND, "legwear", "socks", 0.0, "u", 0.0, 1.0, 2.99, 9.99, "Socks and Tights"),
    _cat("Leggings/Tights", _LO, "bottom", "leggings|tights", 0.2, "w", -0.3, 0.8, 5.99, 19.99,
         "Jersey Basic|Socks and Tights"),
    _cat("Sneakers", _SHOE, "shoes", "trainers", 0.9, "u", 0.0, 0.0, 19.99, 59.99, "Shoes"),
    _cat("Cardigan", _UP, "knit", "cardigan", -0.8, "w", -0.5, 0.0, 17.99, 49.99, "Knitwear"),
    _cat("Hat/beanie", _ACC, "headwear", "beanie|hat", 0.4, "u", -1.0, 0.0, 5.99, 14.99, "Accessories"),
    _cat("Bag", _ACC, "bag", "bag|shoulder bag|tote bag", 0.2, "w", 0.0, 0.0, 12.99, 49.99, "Accessories"),
    _cat("Coat", _UP, "outer", "coat", -0.6, "u", -1.0, 0.0, 49.99, 149.99, "Outdoor"),
    _cat("Swimwear bottom", _SWIM, "swim", "bikini bottoms", 0.7, "w", 1.0, 0.1, 5.99, 14.99, "Swimwear"),
    _cat("Bikini top", _SWIM, "swim", "bikini top", 0.7, "w", 1.0, 0.1, 7.99, 19.99, "Swimwear"),
    _cat("Boots", _SHOE, "shoes", "boots|ankle boots", -0.2, "u", -1.0, 0.0, 29.99, 79.99, "Shoes"),
    _cat("Scarf", _ACC, "smallacc", "scarf", -0.6, "u", -1.0, 0.0, 7.99, 24.99, "Accessories"),
    _cat("Pyjama set", _NIGHT, "night", "pyjamas", -0.3, "u", 0.0, 0.2, 14.99, 34.99, "Under-, Nightwear"),
    _cat("Sandals", _SHOE, "shoes", "sandals", 0.0, "u", 1.0, 0.0, 14.99, 39.99, "Shoes"),
    _cat("Belt", _ACC, "smallacc", "belt", -0.2, "u", 0.0, 0.0, 5.99, 17.99, "Accessories"),
    _cat("Sunglasses", _ACC, "smallacc", "sunglasses", 0.6, "u", 1.0, 0.0, 5.99, 14.99, "Accessories"),
    _cat("Blazer", _UP, "outer", "blazer", -0.7, "w", 0.0, 0.0, 29.99, 69.99, "Dressed"),
    _cat("Jumpsuit/Playsuit", _FULL, "onepiece", "jumpsuit|playsuit", 0.5, "w", 0.5, 0.0, 17.99, 49.99,
         "Jersey Fancy|Dresses Ladies"),
    _cat("Earring", _ACC, "jewellery", "earrings", 0.5, "w", 0.0, 0.1, 3.99, 12.99, "Accessories"),
    _cat("Necklace", _ACC, "jewellery", "necklace", 0.3, "w", 0.0, 0.0, 4.99, 14.99, "Accessories"),
    _cat("Gloves", _ACC, "smallacc", "gloves", -0.5, "u", -1.0, 0.0, 7.99, 19.99, "Accessories"),
    _cat("Underwear bottom", _UND, "lingerie", "briefs|thong briefs|hipster briefs", 0.2, "u", 0.0, 1.0,
         2.99, 9.99, "Under-, Nightwear"),
    _cat("Polo shirt", _UP, "jersey", "polo shirt", -0.5, "u", 0.5, 0.2, 12.99, 24.99, "Jersey Basic"),
    _cat("Bodysuit", _UP, "jersey", "body", 0.5, "w", 0.0, 0.2, 9.99, 24.99, "Jersey Fancy"),
    _cat("Outdoor trousers", _LO, "bottom", "outdoor trousers", -0.1, "u", -1.0, 0.0, 24.99, 49.99, "Outdoor"),
    _cat("Dungarees", _FULL, "onepiece", "dungarees", 0.6, "u", 0.0, 0.0, 19.99, 44.99, "Trousers Denim"),
    _cat("Garment Set", _FULL, "onepiece", "set", 0.3, "u", 0.0, 0.0, 14.99, 39.99, "Jersey Fancy"),
    _cat("Swimsuit", _SWIM, "swim", "swimsuit", -0.6, "w", 1.0, 0.0, 14.99, 34.99, "Swimwear"),
    _cat("Swimwear top", _SWIM, "swim", "tankini top", -0.3, "w", 1.0, 0.0, 9.99, 24.99, "Swimwear"),
    _cat("Sarong", _SWIM, "swim", "sarong", -0.4, "w", 1.0, 0.0, 9.99, 19.99, "Swimwear"),
    _cat("Pyjama bottom", _NIGHT, "night", "pyjama bottoms", 0.0, "u", 0.0, 0.3, 9.99, 19.99,
         "Under-, Nightwear"),
    _cat("Night gown", _NIGHT, "night", "nightdress", -0.9, "w", 0.0, 0.1, 12.99, 29.99, "Under-, Nightwear"),
    _cat("Pyjama jumpsuit/playsuit", _NIGHT, "night", "pyjama jumpsuit", 0.6, "u", -0.3, 0.1, 14.99, 29.99,
         "Under-, Nightwear"),
    _cat("Ballerinas", _SHOE, "shoes", "ballet pumps", -0.4, "w", 0.3, 0.0, 14.99, 29.99, "Shoes"),
    _cat("Pumps", _SHOE, "shoes", "court shoes", -0.5, "w", 0.0, 0.0, 19.99, 49.99, "Shoes"),
    _cat("Heeled sandals", _SHOE, "shoes", "heeled sandals", 0.1, "w", 1.0, 0.0, 19.99, 49.99, "Shoes"),
    _cat("Slippers", _SHOE, "shoes", "slippers", -0.3, "u", -0.5, 0.1, 7.99, 19.99, "Shoes"),
    _cat("Flip flop", _SHOE, "shoes", "flip-flops", 0.5, "u", 1.0, 0.1, 4.99, 12.99, "Shoes"),
    _cat("Flat shoe", _SHOE, "shoes", "loafers", -0.4, "u", 0.0, 0.0, 19.99, 49.99, "Shoes"),
    _cat("Wedge", _SHOE, "shoes", "wedge-heeled sandals", -0.3, "w", 1.0, 0.0, 19.99, 39.99, "Shoes"),
    _cat("Hair/alice band", _ACC, "headwear", "alice band|hairband", 0.6, "w", 0.0, 0.1, 3.99, 9.99,
         "Accessories"),
    _cat("Hair clip", _ACC, "smallacc", "hair clips", 0.7, "w", 0.0, 0.2, 2.99, 7.99, "Accessories"),
    _cat("Hair string", _ACC, "smallacc", "hair elastics", 0.6, "w", 0.0, 0.6, 2.99, 5.99, "Accessories"),
    _cat("Ring", _ACC, "jewellery", "rings", 0.5, "w", 0.0, 0.1, 3.99, 12.99, "Accessories"),
    _cat("Bracelet", _ACC, "jewellery", "bracelet", 0.2, "w", 0.0, 0.0, 4.99, 14.99, "Accessories"),
    _cat("Cap/peaked", _ACC, "headwear", "cap", 0.8, "u", 0.5, 0.0, 7.99, 17.99, "Accessories"),
    _cat("Hat/brim", _ACC, "headwear", "hat|bucket hat|straw hat", 0.0, "u", 1.0, 0.0, 9.99, 24.99,
         "Accessories"),
    _cat("Wallet", _ACC, "bag", "wallet|purse", -0.3, "u", 0.0, 0.0, 7.99, 24.99, "Accessories"),
    _cat("Watch", _ACC, "smallacc", "watch", -0.2, "u", 0.0, 0.0, 14.99, 39.99, "Accessories"),
    _cat("Umbrella", _ACC, "smallacc", "umbrella", -0.5, "u", -0.5, 0.0, 9.99, 19.99, "Accessories"),
    _cat("Tie", _ACC, "smallacc", "tie", -0.6, "u", 0.0, 0.0, 9.99, 19.99, "Accessories"),
    _cat("Underwear Tights", _UND, "legwear", "tights", -0.2, "w", -0.5, 0.9, 4.99, 14.99, "Socks and Tights"),
    _cat("Underwear body", _UND, "lingerie", "body", -0.4, "w", 0.0, 0.3, 14.99, 29.99, "Under-, Nightwear"),
    _cat("Long John", _UND, "legwear", "long johns", -0.5, "u", -1.0, 0.6, 9.99, 19.99, "Under-, Nightwear"),
    _cat("Tailored Waistcoat", _UP, "outer", "waistcoat", -0.6, "u", 0.0, 0.0, 19.99, 49.99, "Dressed"),
    _cat("Outdoor Waistcoat", _UP, "outer", "padded gilet", -0.3, "u", -1.0, 0.0, 24.99, 59.99, "Outdoor"),
    _cat("Costumes", _FULL, "onepiece", "costume", 0.4, "u", 0.0, 0.0, 14.99, 34.99, "Jersey Fancy"),
    _cat("Outdoor overall", _FULL, "onepiece", "all-in-one suit", 0.0, "u", -1.0, 0.0, 29.99, 59.99, "Outdoor"),
    _cat("Robe", _NIGHT, "night", "dressing gown", -0.6, "u", -0.5, 0.0, 19.99, 39.99, "Under-, Nightwear"),
    _cat("Backpack", _ACC, "bag", "backpack", 0.6, "u", 0.0, 0.0, 19.99, 39.99, "Accessories"),
    _cat("Bootie", _SHOE, "shoes", "booties", -0.1, "w", -1.0, 0.0, 24.99, 59.99, "Shoes"),
    _cat("Other shoe", _SHOE, "shoes", "shoes", 0.0, "u", 0.0, 0.0, 14.99, 39.99, "Shoes"),
    _cat("Underdress", _UND, "lingerie", "slip dress", -0.5, "w", 0.0, 0.1, 14.99, 29.99, "Under-, Nightwear"),
    _cat("Mobile case", _ACC, "smallacc", "mobile phone case", 0.9, "u", 0.0, 0.0, 7.99, 14.99, "Accessories"),
    _cat("Leg warmers", _UND, "legwear", "leg warmers", 0.4, "w", -1.0, 0.3, 5.99, 12.99, "Socks and Tights"),
    _cat("Keychain", _ACC, "smallacc", "keyring", 0.4, "u", 0.0, 0.0, 3.99, 7.99, "Accessories"),
    _cat("Headband", _ACC, "headwear", "headband", 0.3, "w", -0.5, 0.1, 4.99, 9.99, "Accessories"),
)

# Words that mark the line a numbered extra category ("Top 2") belongs to, so its text differs from "Top".
COLLECTION_LINES = ("Studio", "Conscious", "Premium Quality", "Sport", "Edition", "Essentials", "Atelier",
                    "Holiday", "Party", "Workwear", "Loungewear", "Festival")

# Per kind: (fits or styles, materials, features, closing sentences); each word with a youth weight.
Words = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class KindSpec:
    """How garments of one kind are described."""

    fits: Words
    materials: Words
    features: Words
    closers: tuple[str, ...]


def _w(text: str) -> Words:
    """Parse 'word:youth;word:youth' into a words table."""
    out = []
    for item in text.split(";"):
        word, _, youth = item.rpartition(":")
        out.append((word.strip(), float(youth)))
    return tuple(out)


KINDS: dict[str, KindSpec] = {
    "jersey": KindSpec(
        _w("Fitted:-0.1;Relaxed-fit:0.1;Oversized:0.8;Slim-fit:-0.2;Regular-fit:-0.4;Cropped:0.9;Boxy:0.6;"
           "Loose-fitting:0.0"),
        _w("soft cotton jersey:0.1;organic cotton jersey:0.0;viscose jersey:-0.3;rib-knit cotton:0.5;"
           "sweatshirt fabric:0.7;slub jersey:0.2;modal-blend jersey:-0.4;piqué:-0.6;"
           "jersey made from recycled polyester:0.3"),
        _w("a round neckline:0.0;a V-neck:-0.4;short sleeves:0.0;long sleeves:-0.1;dropped shoulders:0.6;"
           "narrow shoulder straps:0.5;a chest pocket:-0.2;ribbing around the neckline:0.1;"
           "a lined drawstring hood:0.7;a kangaroo pocket:0.6;a rounded hem:-0.3;a print motif:0.8;"
           "raw edges:0.7;a wrapover front:-0.5;puff sleeves:0.4"),
        ("Soft brushed inside.", "Made partly from recycled polyester.", "A basic from our everyday range.",
         "Slightly longer at the back.", "Perfect for layering."),
    ),
    "knit": KindSpec(
        _w("Fitted:-0.3;Relaxed-fit:0.1;Oversized:0.8;Cropped:0.9;Long:-0.6;Regular-fit:-0.4;Boxy:0.5"),
        _w("soft fine-knit fabric:-0.4;chunky knit:0.3;rib-knit fabric:0.3;wool-blend knit:-0.7;"
           "cashmere-blend knit:-0.9;cable-knit fabric:-0.3;mohair-blend knit:0.2;cotton-blend knit:0.0;"
           "pointelle knit:0.1"),
        _w("a round neckline:0.0;a V-neck:-0.4;a high collar:-0.2;dropped shoulders:0.5;long sleeves:0.0;"
           "balloon sleeves:0.5;ribbing at the cuffs and hem:0.0;buttons down the front:-0.6;"
           "pockets at the front:-0.5;a turtle neck:-0.2;slits in the sides:0.3"),
        ("Made partly from recycled materials.", "Soft and warm.", "Hand wash only.", "Loose fit.",
         "A classic piece for the colder months."),
    ),
    "woven": KindSpec(
        _w("Fitted:-0.3;Relaxed-fit:0.0;Oversized:0.7;Slim-fit:-0.3;Regular-fit:-0.5;Cropped:0.8;"
           "Loose-fitting:-0.1"),
        _w("cotton poplin:-0.3;airy chiffon:-0.4;satin:0.1;crêpe:-0.6;linen-blend weave:-0.5;"
           "viscose weave:-0.2;Oxford cotton:-0.4;denim:0.4;flannel:0.2;broderie anglaise:0.1"),
        _w("a collar and buttons down the front:-0.3;a V-neck:-0.4;long sleeves:0.0;short puff sleeves:0.5;"
           "buttoned cuffs:-0.4;a chest pocket:-0.2;a tie at the neck:-0.6;frills:0.2;a rounded hem:-0.3;"
           "a yoke at the back:-0.4;a resort collar:0.4;smocking:0.3"),
        ("Regular fit.", "Easy-iron fabric.", "Made from sustainably sourced viscose.", "Slim fit.",
         "Perfect for the office."),
    ),
    "outer": KindSpec(
        _w("Fitted:-0.2;Relaxed-fit:0.1;Oversized:0.8;Straight-cut:-0.4;Double-breasted:-0.6;Cropped:0.8;"
           "Padded:0.3;Long:-0.5"),
        _w("water-repellent shell fabric:0.1;wool-blend felt:-0.8;faux leather:0.5;denim:0.4;"
           "teddy fleece:0.7;quilted nylon:0.2;cotton twill:-0.3;woven fabric:-0.5;faux shearling:0.3"),
        _w("notch lapels:-0.7;a stand-up collar:0.0;a concealed zip:-0.1;a detachable hood:0.4;"
           "flap side pockets:-0.3;buttons down the front:-0.4;a drawstring at the hem:0.3;"
           "a lined interior:-0.3;shoulder pads:-0.2;a tie belt at the waist:-0.5;press-studs:0.2"),
        ("Lined.", "Unlined.", "Padding made from recycled polyester.", "Water-repellent.",
         "A timeless outer layer."),
    ),
    "bottom": KindSpec(
        _w("Skinny:0.2;Slim-fit:-0.2;Straight-leg:-0.3;Wide-leg:0.4;Flared:0.6;Relaxed-fit:0.3;Tapered:-0.1;"
           "High-waisted:0.5;Mini:0.8;Midi:-0.5;Cargo:0.9;Shaping:-0.6"),
        _w("stretch denim:0.3;rigid cotton denim:0.5;cotton twill:-0.2;linen blend:-0.5;crêpe:-0.5;"
           "soft jersey:0.1;corduroy:0.2;sweatshirt fabric:0.8;ribbed jersey:0.4;faux leather:0.6;"
           "sturdy nylon:0.3"),
        _w("a high waist:0.5;an elasticated waist:-0.2;a zip fly and button:0.0;side pockets:0.0;"
           "welt back pockets:-0.2;raw-edge hems:0.6;pleats at the front:-0.5;a tie belt:-0.3;"
           "slits in the hems:0.3;a drawstring waist:0.3;a wrapover front:-0.2;"
           "patch pockets on the legs:0.8;creases:-0.6"),
        ("Regular waist.", "Slim fit.", "Made partly from recycled cotton.", "Ankle length.",
         "A wardrobe staple."),
    ),
    "skirt": KindSpec(
        _w("Mini:0.8;Midi:-0.4;Maxi:-0.2;A-line:-0.3;Pleated:-0.1;Wrap:-0.4;Pencil:-0.6;Tiered:0.3"),
        _w("airy chiffon:-0.3;satin:0.3;denim:0.5;cotton twill:-0.1;crêpe:-0.5;linen blend:-0.4;"
           "faux leather:0.6;rib-knit fabric:0.4;tulle:0.5;corduroy:0.2"),
        _w("a high waist:0.4;an elasticated waist:-0.3;a concealed zip at the back:-0.4;a slit at the front:0.3;"
           "flounces:0.2;a tie belt:-0.3;buttons down the front:0.0;side pockets:-0.1;a wrapover front:-0.3;"
           "a lining:-0.4;raw-edge hems:0.6"),
        ("Lined.", "Unlined.", "Made from sustainably sourced viscose.", "Perfect for the office.",
         "Twirls beautifully."),
    ),
    "onepiece": KindSpec(
        _w("Fitted:-0.2;Short:0.7;Calf-length:-0.5;Ankle-length:-0.4;Wrap:-0.4;Oversized:0.6;Flared:0.1;"
           "Tiered:0.3;Bodycon:0.8"),
        _w("airy chiffon:-0.3;cotton jersey:0.2;crinkled viscose:0.0;satin:0.2;rib-knit fabric:0.5;"
           "linen blend:-0.5;crêpe:-0.6;denim:0.5;sequined mesh:0.7;broderie anglaise:0.0"),
        _w("a V-neck:-0.3;a wrapover front:-0.4;a tie belt at the waist:-0.4;short puff sleeves:0.5;"
           "a flared skirt:0.0;narrow adjustable shoulder straps:0.5;a concealed zip at the back:-0.4;"
           "a smocked bodice:0.4;a square neckline:0.5;flounces:0.1;an open back:0.6;long sleeves:-0.3"),
        ("Lined.", "Unlined.", "Perfect for parties.", "Made from sustainably sourced viscose.",
         "A versatile summer favourite."),
    ),
    "shoes": KindSpec(
        _w("Chunky:0.8;Classic:-0.6;Low-profile:-0.1;Platform:0.7;Slip-on:-0.3;Lace-up:0.0;Block-heeled:-0.4;"
           "Minimalist:0.2"),
        _w("faux leather:0.2;suede:-0.4;canvas:0.5;leather:-0.7;mesh:0.6;imitation suede:0.0;"
           "woven straw:-0.2;rubber:0.4"),
        _w("a padded footbed:-0.2;lacing at the front:0.2;a block heel:-0.4;a chunky sole:0.8;"
           "a pull-on tab at the back:0.5;an almond-shaped toe:-0.6;adjustable ankle straps:-0.1;"
           "rubber soles:0.2;a square toe:0.4;a side zip:-0.3;a cushioned insole:-0.2"),
        ("Heel height 3 cm.", "Heel height 8 cm.", "Lining and insoles in fabric.", "Rubber soles.",
         "Comfortable for all-day wear."),
    ),
    "jewellery": KindSpec(
        _w("Delicate:-0.2;Chunky:0.6;Minimalist:0.1;Statement:0.4;Classic:-0.6;Beaded:0.5"),
        _w("gold-coloured metal:0.0;silver-coloured metal:0.1;sterling silver:-0.5;gold-plated brass:-0.3;"
           "freshwater pearls:-0.6;glass beads:0.5;resin:0.6"),
        _w("a hook fastening:0.0;sparkly stones:0.3;a lobster clasp:-0.2;pendants:0.2;hoops:0.4;"
           "an adjustable length:0.0;a chain:0.1;a heart pendant:0.6"),
        ("Set of three.", "Set of six pairs.", "Nickel-free.", "Gift-ready.", "Made with recycled metal."),
    ),
    "bag": KindSpec(
        _w("Small:0.3;Large:-0.3;Structured:-0.6;Slouchy:0.4;Mini:0.8;Classic:-0.5"),
        _w("faux leather:0.2;cotton canvas:0.4;woven straw:-0.1;quilted nylon:0.5;leather:-0.7;"
           "imitation suede:-0.2;recycled polyester:0.3"),
        _w("a detachable shoulder strap:0.0;a magnetic fastening:-0.2;an adjustable strap:0.1;"
           "a zipped inner compartment:-0.3;a lined interior:-0.3;a chain strap:0.4;two handles:-0.4;"
           "a flap with a press-stud:-0.1;card slots:-0.2"),
        ("Size 22x14 cm.", "Lined.", "Unlined.", "Fits a laptop.", "Made partly from recycled materials."),
    ),
    "headwear": KindSpec(
        _w("Soft:0.0;Chunky:0.4;Classic:-0.5;Oversized:0.6;Slouchy:0.5;Wide:-0.2"),
        _w("rib-knit fabric:0.4;wool blend:-0.6;cotton twill:0.3;paper straw:-0.2;velvet:0.2;"
           "satin:0.1;teddy fleece:0.6"),
        _w("a turn-up:0.3;a pompom on top:0.2;an adjustable strap at the back:0.5;a wide brim:-0.4;"
           "a logo patch:0.7;decorative bows:0.3;an elasticated back:0.0;a grosgrain band:-0.5"),
        ("One size.", "Lined.", "Soft and warm.", "Set of two.", "Made partly from recycled polyester."),
    ),
    "smallacc": KindSpec(
        _w("Classic:-0.5;Slim:0.0;Wide:-0.1;Oversized:0.5;Playful:0.4;Retro:0.6;Soft:-0.1"),
        _w("faux leather:0.2;leather:-0.6;soft wool blend:-0.6;woven fabric:0.0;recycled plastic:0.5;"
           "metal:0.1;silk:-0.7;acetate:0.3;satin:0.2"),
        _w("a metal buckle:-0.2;tinted UV-protective lenses:0.5;fringes at the ends:-0.2;"
           "an elasticated band:0.3;touchscreen fingertips:0.2;decorative pearls:0.1;"
           "an automatic opening:-0.4;a clip fastening:0.3;a classic shape:-0.5"),
        ("One size.", "Set of two.", "Comes in a gift box.", "Made partly from recycled materials.",
         "Width 3 cm."),
    ),
    "lingerie": KindSpec(
        _w("Push-up:0.5;Soft:-0.2;Lace:0.4;Seamless:-0.1;Moulded:0.0;Non-wired:-0.3;Sporty:0.5"),
        _w("microfibre:-0.2;lace:0.3;cotton jersey:0.1;satin:0.2;mesh:0.5;ribbed modal:0.0;"
           "recycled polyamide:0.2"),
        _w("underwired moulded cups:0.2;narrow adjustable shoulder straps:0.2;"
           "a hook-and-eye fastening at the back:-0.1;a wide lace trim:0.4;a lined gusset:0.0;"
           "an elasticated waist:-0.1;a low waist:0.5;a high waist:-0.4;high-cut legs:0.5;"
           "racer back straps:0.6;lightly padded cups:0.3"),
        ("Without visible seams for greater comfort.", "Five-pack.", "Three-pack.",
         "Made from recycled polyamide.", "Gives good support."),
    ),
    "legwear": KindSpec(
        _w("Fine-knit:-0.3;Ribbed:0.3;Colourful:0.4;Ankle-length:0.5;Opaque:-0.3;Sheer:0.0;Knee-high:0.2"),
        _w("soft cotton-blend:0.0;fine-knit yarn:-0.3;recycled nylon:0.2;wool blend:-0.6;terry:0.4;"
           "20 denier nylon:-0.1;60 denier microfibre:-0.2"),
        _w("ribbed tops:0.2;reinforced toes and heels:-0.2;a flat-knit gusset:-0.1;an elasticated waist:-0.2;"
           "a motif:0.6;a shaping waist:-0.5;anti-slip silicone:0.1;a cushioned sole:0.0"),
        ("Five-pack.", "Seven-pack.", "Three-pack.", "Made partly from recycled polyamide.",
         "A basic everyday essential."),
    ),
    "swim": KindSpec(
        _w("Padded:0.2;Triangle:0.7;Brazilian:0.8;High-waisted:0.0;Shaping:-0.7;Classic:-0.5;Frilled:0.4"),
        _w("recycled polyamide:0.1;ribbed fabric:0.6;textured fabric:0.3;shimmering fabric:0.5;"
           "crinkled fabric:0.2;matte jersey:-0.5"),
        _w("lined cups:0.0;ties at the sides:0.6;a high waist:-0.3;high-cut legs:0.6;fully lined:-0.2;"
           "narrow adjustable shoulder straps:0.2;a tie at the back of the neck:0.4;a wrapover front:-0.4;"
           "a lined gusset:0.0;a cut-out detail:0.7"),
        ("Fully lined.", "Made from recycled polyamide.", "Quick-drying.", "Medium coverage.",
         "Perfect for the beach."),
    ),
    "night": KindSpec(
        _w("Soft:-0.2;Relaxed-fit:0.1;Oversized:0.6;Short:0.5;Long:-0.6;Cosy:0.3"),
        _w("cotton jersey:0.1;satin:0.3;cotton flannel:-0.4;modal jersey:-0.2;fleece:0.5;"
           "waffled cotton:-0.1;organic cotton:0.0"),
        _w("a top with short sleeves:0.2;shorts with an elasticated waist:0.5;"
           "a collar and buttons down the front:-0.5;piping around the edges:-0.6;"
           "long trousers with a drawstring waist:-0.2;a V-neck:-0.3;a print motif:0.7;a tie belt:-0.4;"
           "lace trims:0.1;a hood:0.6"),
        ("Soft brushed inside.", "Set of two pieces.", "Made from organic cotton.", "Relaxed fit.",
         "Perfect for lazy weekends."),
    ),
}

# index_code -> (index_name, index_group_no, index_group_name, youth effect, gender effect, is kids)
INDEXES: dict[str, tuple[str, int, str, float, float, bool]] = {
    "A": ("Ladieswear", 1, "Ladieswear", -0.3, -0.8, False),
    "B": ("Lingeries/Tights", 1, "Ladieswear", 0.0, -0.8, False),
    "C": ("Ladies Accessories", 1, "Ladieswear", 0.0, -0.8, False),
    "D": ("Divided", 2, "Divided", 1.0, -0.4, False),
    "F": ("Menswear", 3, "Menswear", -0.1, 1.6, False),
    "G": ("Baby Sizes 50-98", 4, "Baby/Children", 0.0, 0.0, True),
    "H": ("Children Sizes 92-140", 4, "Baby/Children", 0.0, 0.0, True),
    "I": ("Children Sizes 134-170", 4, "Baby/Children", 0.0, 0.0, True),
    "J": ("Children Accessories, Swimwear", 4, "Baby/Children", 0.0, 0.0, True),
}

# Which lines (index codes) sell a kind of product, with weights; "F" is dropped for womenswear-only types.
KIND_INDEXES: dict[str, tuple[tuple[str, float], ...]] = {
    "garment": (("A", 0.36), ("D", 0.26), ("F", 0.2), ("H", 0.07), ("I", 0.06), ("G", 0.05)),
    "shoes": (("C", 0.55), ("D", 0.15), ("F", 0.18), ("J", 0.12)),
    "jewellery": (("C", 0.7), ("D", 0.25), ("J", 0.05)),
    "accessory": (("C", 0.55), ("D", 0.18), ("F", 0.17), ("J", 0.1)),
    "underwear": (("B", 0.7), ("F", 0.15), ("H", 0.1), ("G", 0.05)),
    "swim": (("B", 0.65), ("D", 0.15), ("F", 0.1), ("H", 0.1)),
    "night": (("B", 0.6), ("F", 0.1), ("H", 0.2), ("G", 0.1)),
}
KIND_TO_LINE_FAMILY = {
    "jersey": "garment", "knit": "garment", "woven": "garment", "outer": "garment", "bottom": "garment",
    "skirt": "garment", "onepiece": "garment", "shoes": "shoes", "jewellery": "jewellery", "bag": "accessory",
    "headwear": "accessory", "smallacc": "accessory", "lingerie": "underwear", "legwear": "underwear",
    "swim": "swim", "night": "night",
}

GARMENT_GROUPS: dict[str, int] = {
    "Jersey Basic": 1002, "Knitwear": 1003, "Jersey Fancy": 1005, "Blouses": 1006, "Outdoor": 1007,
    "Trousers": 1009, "Dressed": 1010, "Shirts": 1011, "Skirts": 1012, "Dresses Ladies": 1013, "Shorts": 1014,
    "Trousers Denim": 1016, "Under-, Nightwear": 1017, "Swimwear": 1018, "Accessories": 1019, "Shoes": 1020,
    "Socks and Tights": 1021,
}

# Base department name per (garment group, kind); the line adds a prefix (e.g. "Divided Knitwear").
DEPARTMENT_BASES = (
    "Jersey Basic", "Jersey Fancy", "Knitwear", "Blouse", "Shirt", "Outdoor", "Tailoring", "Trousers",
    "Denim", "Shorts", "Skirt", "Dresses", "Shoes", "Jewellery", "Bags", "Hats & Hair", "Small Accessories",
    "Casual Lingerie", "Socks & Tights", "Swimwear", "Nightwear",
)
LINE_PREFIX = {"A": "", "B": "", "C": "", "D": "Divided ", "F": "Men ", "G": "Baby ", "H": "Kids ",
               "I": "Young ", "J": "Kids "}

SECTIONS: dict[str, int] = {
    "Womens Everyday Collection": 15, "Womens Tailoring": 16, "Womens Everyday Basics": 18,
    "Womens Lingerie": 61, "Womens Nightwear, Socks & Tigh": 62, "Womens Swimwear, beachwear": 60,
    "Womens Shoes": 64, "Womens Small accessories": 66, "Womens Big accessories": 65,
    "Divided Collection": 53, "Divided Basics": 51, "Divided Accessories": 52, "Contemporary Casual": 25,
    "Contemporary Smart": 26, "Mens Outerwear": 23, "Men Underwear": 21, "Men Accessories": 20,
    "Men Shoes": 22, "Baby Essentials & Complements": 44, "Kids Girl": 46, "Kids Boy": 45,
    "Young Girl": 41, "Young Boy": 40, "Kids Accessories, Swimwear & D": 43,
}

# (code, name, perceived value id, value name, master id, master name, popularity weight, youth)
COLOURS: tuple[tuple[int, str, int, str, int, str, float, float], ...] = (
    (9, "Black", 4, "Dark", 5, "Black", 20.0, 0.1),
    (10, "White", 3, "Light", 9, "White", 9.0, 0.1),
    (11, "Off White", 2, "Dusty Light", 9, "White", 4.0, -0.2),
    (73, "Dark Blue", 4, "Dark", 2, "Blue", 8.0, -0.4),
    (72, "Blue", 7, "Medium", 2, "Blue", 4.0, 0.0),
    (71, "Light Blue", 3, "Light", 2, "Blue", 3.5, 0.2),
    (7, "Grey", 5, "Medium Dusty", 12, "Grey", 3.0, -0.1),
    (8, "Dark Grey", 4, "Dark", 12, "Grey", 2.5, -0.3),
    (6, "Light Grey", 3, "Light", 12, "Grey", 2.0, 0.0),
    (12, "Light Beige", 2, "Dusty Light", 11, "Beige", 4.0, -0.4),
    (13, "Beige", 5, "Medium Dusty", 11, "Beige", 3.0, -0.5),
    (15, "Dark Beige", 4, "Dark", 11, "Beige", 1.0, -0.3),
    (51, "Light Pink", 3, "Light", 4, "Pink", 4.5, 0.6),
    (52, "Pink", 5, "Medium Dusty", 4, "Pink", 2.0, 0.5),
    (53, "Dark Pink", 6, "Bright", 4, "Pink", 0.8, 0.7),
    (42, "Red", 6, "Bright", 18, "Red", 1.8, 0.2),
    (43, "Dark Red", 4, "Dark", 18, "Red", 1.3, -0.3),
    (92, "Green", 7, "Medium", 19, "Green", 0.8, 0.2),
    (93, "Dark Green", 4, "Dark", 19, "Green", 1.3, -0.2),
    (19, "Greenish Khaki", 5, "Medium Dusty", 20, "Khaki green", 1.8, 0.0),
    (21, "Light Yellow", 3, "Light", 8, "Yellow", 0.9, 0.4),
    (23, "Dark Yellow", 5, "Medium Dusty", 8, "Yellow", 0.6, 0.2),
    (32, "Orange", 6, "Bright", 6, "Orange", 0.6, 0.5),
    (61, "Light Purple", 3, "Light", 7, "Lilac Purple", 1.0, 0.6),
    (82, "Turquoise", 6, "Bright", 17, "Turquoise", 0.6, 0.4),
    (17, "Yellowish Brown", 5, "Medium Dusty", 13, "Brown", 1.2, -0.2),
    (3, "Silver", 7, "Medium", 10, "Metal", 0.5, 0.3),
    (5, "Gold", 7, "Medium", 10, "Metal", 0.5, 0.2),
)
# Jewellery and watches come mostly in metal colours.
METAL_COLOURS = ("Gold", "Silver")
METAL_WEIGHT = 40.0

# (no, name, popularity weight, description word or "" for none)
PATTERNS: tuple[tuple[int, str, float, str], ...] = (
    (1010016, "Solid", 48.0, ""),
    (1010001, "All over pattern", 11.0, "patterned"),
    (1010010, "Melange", 5.0, "marled"),
    (1010017, "Stripe", 5.0, "striped"),
    (1010014, "Placement print", 3.0, "printed"),
    (1010005, "Check", 2.0, "checked"),
    (1010008, "Front print", 3.0, "graphic-print"),
    (1010012, "Lace", 1.5, "lace-trimmed"),
    (1010007, "Dot", 1.0, "spotted"),
    (1010009, "Jacquard", 1.0, "jacquard-knit"),
    (1010020, "Embroidery", 1.0, "embroidered"),
    (1010023, "Glittering/Metallic", 1.0, "glittery"),
    (1010021, "Other structure", 1.5, "textured"),
)
DENIM_PATTERN = (1010004, "Denim")
# Kinds whose articles are nearly always plain (a solid colour or metallic).
PLAIN_KINDS = ("shoes", "jewellery", "bag", "smallacc")

# Customer-facing style names; prod_name = "<style name> <noun>" (e.g. "Luna oversized hoodie").
STYLE_NAMES = (
    "Luna", "Jade", "Tilly", "Ellie", "Mira", "Alva", "Nora", "Vera", "Ivy", "Ruby", "Stella", "Bella",
    "Milo", "Leo", "Hugo", "Felix", "Otis", "Noah", "Sam", "Max", "Iris", "Freja", "Ebba", "Wilma", "Saga",
    "Elsa", "Alma", "Lova", "Tove", "Signe", "Malin", "Greta", "Astrid", "Linnea", "Maja", "Hedda", "Siri",
    "Timeless", "Essential", "Cosy", "Daisy", "Rio", "Paris", "Oslo", "Bergen", "Venice", "Milano", "Tokyo",
    "Capri", "Brooklyn", "Malibu", "Chelsea", "Soho", "Harper", "Phoebe", "Zoe", "Cleo", "Dolly", "Ronja",
    "Bonnie", "Pixie", "Rosie", "Sunny", "Willow", "Amber", "Coco", "Dakota", "Jamie", "Kim", "Robin",
    "Charlie", "Billie", "Frankie", "Alex", "Morgan", "Sasha", "Toni", "Jo", "Ash", "Dani",
)

# --- latent space (shared by customers, categories and articles) ---
# Named dimensions, so no code slices a magic offset: the first few carry a meaning, the rest are free taste.
LATENT_YOUTH = 0  # young (+) vs older (-) style
LATENT_GENDER = 1  # menswear (+) vs womenswear (-)
LATENT_KIDS = 2  # children's lines
LATENT_PRICE = 3  # price sensitivity (customer) vs cheapness (article)
LATENT_ONLINE = 4  # online-leaning assortment
LATENT_TASTE_START = 5
LATENT_TASTE_DIMS = 11
LATENT_DIM = LATENT_TASTE_START + LATENT_TASTE_DIMS
