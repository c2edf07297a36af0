//! The Unified Social Credit Code (统一社会信用代码, GB 32100-2015): the 18-character
//! registration number of every legal entity registered in mainland China.
//!
//! Layout: registration authority (1) + entity type (1) + administrative division (6) +
//! organisation code (9) + check character (1). Only the check character is verified here; it
//! catches every single-character typo and every swap of two neighbouring characters among the
//! first 17, which is what a clerk keying a code from a business licence gets wrong.
//!
//! The registration-authority character (the first) is deliberately not restricted. The 2015
//! text lists 1 (机构编制), 5 (民政), 9 (工商) and Y (other), but codes issued since by other
//! authorities are in use on real licences — law firms start with 3, religious venues with 7,
//! trade unions with 8, rural collective economic organisations with N — and refusing them would
//! refuse real customers.
//!
//! Input must already be upper case and trimmed; normalising is the caller's job, so that what
//! is stored is exactly what was checked.

/// Number of characters in a code.
pub const USCC_LENGTH: usize = 18;

/// Characters a code may use; a character's value is its index. The standard leaves out I, O,
/// S, V and Z, which are easily misread as other characters.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Modulus of the check: the size of the alphabet, a prime, so every non-zero weight times
/// every non-zero change of value moves the sum.
const MODULUS: u32 = 31;

/// Weight of each of the first 17 positions: 3^i mod 31.
const WEIGHTS: [u32; USCC_LENGTH - 1] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a code is not a valid USCC. The messages are safe to show callers: they say what is
/// wrong without echoing the input, and never reveal which check character would be right:
/// that would turn the check into a generator of valid-looking codes for mistyped numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// The code does not have exactly 18 characters; `length` is how many it has.
    #[error("unified social credit code must have {USCC_LENGTH} characters, not {length}")]
    WrongLength { length: usize },
    /// The character at `position` (1-based, as a person counts) is outside the alphabet.
    #[error(
        "character {position} of the unified social credit code is not allowed \
         (only digits and the upper-case letters A-Y without I, O, S, V and Z)"
    )]
    InvalidCharacter { position: usize },
    /// All characters are allowed but the last one is not the check character of the others.
    #[error("check character of the unified social credit code does not match")]
    CheckCharacterMismatch,
}

/// Value (0..=30) of one character of the alphabet, or `None` for anything else.
fn character_value(character: char) -> Option<u32> {
    let index = ALPHABET
        .iter()
        .position(|&allowed| char::from(allowed) == character)?;
    u32::try_from(index).ok()
}

/// The check character for the first 17 characters of a code, or `None` unless `first_17` is
/// exactly 17 characters of the alphabet.
pub fn check_character(first_17: &str) -> Option<char> {
    let mut characters = first_17.chars();
    let mut weighted_sum: u32 = 0;
    for weight in WEIGHTS {
        // At most 17 × 30 × 30 = 15,300: no overflow possible.
        weighted_sum += weight * character_value(characters.next()?)?;
    }
    if characters.next().is_some() {
        return None;
    }
    // The standard's "31 − (sum mod 31), and 31 becomes 0", written as one modulo.
    let check_value = (MODULUS - weighted_sum % MODULUS) % MODULUS;
    let check_index = usize::try_from(check_value).ok()?;
    ALPHABET.get(check_index).map(|&byte| char::from(byte))
}

/// Checks that `code` is a well-formed USCC whose check character matches. Reports the first
/// problem found, in the order length, characters, check character.
pub fn validate(code: &str) -> Result<(), UsccError> {
    let length = code.chars().count();
    if length != USCC_LENGTH {
        return Err(UsccError::WrongLength { length });
    }
    if let Some(index) = code
        .chars()
        .position(|character| character_value(character).is_none())
    {
        return Err(UsccError::InvalidCharacter {
            position: index + 1,
        });
    }
    // Every character is ASCII now, so byte offset 17 is the boundary before the last one;
    // the two fallbacks below cannot be reached after the checks above.
    let (first_17, given_check) = code
        .split_at_checked(USCC_LENGTH - 1)
        .ok_or(UsccError::WrongLength { length })?;
    let expected_check = check_character(first_17).ok_or(UsccError::WrongLength { length })?;
    if given_check.chars().eq(std::iter::once(expected_check)) {
        Ok(())
    } else {
        Err(UsccError::CheckCharacterMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes published with their check characters, each verified here by computation: the
    /// worked example of GB 32100-2015, and the codes printed on the business licences of
    /// Huawei Technologies Co., Ltd. and Shenzhen Tencent Computer Systems Co., Ltd.
    const PUBLISHED_CODES: [&str; 3] = [
        "91350100M000100Y43",
        "914403001922038216",
        "9144030071526726XG",
    ];

    /// A small deterministic generator (xorshift64), so the property tests below cover many
    /// codes without a random-testing dependency and fail reproducibly.
    struct Xorshift(u64);

    impl Xorshift {
        fn next_index(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }

        fn alphabet_string(&mut self, length: usize) -> String {
            (0..length)
                .map(|_| char::from(ALPHABET[self.next_index(ALPHABET.len())]))
                .collect()
        }
    }

    fn with_check_character(first_17: &str) -> String {
        let check = check_character(first_17).unwrap();
        format!("{first_17}{check}")
    }

    fn replace_at(code: &str, index: usize, replacement: char) -> String {
        code.chars()
            .enumerate()
            .map(|(position, character)| {
                if position == index {
                    replacement
                } else {
                    character
                }
            })
            .collect()
    }

    #[test]
    fn published_codes_are_valid() {
        for code in PUBLISHED_CODES {
            assert_eq!(validate(code), Ok(()), "{code}");
            assert_eq!(check_character(&code[..17]), code.chars().last(), "{code}");
        }
    }

    #[test]
    fn constructed_codes_are_valid() {
        // Shaped like real codes: authority 9 / type 1 (company), a division code, then an
        // organisation code.
        for first_17 in [
            "91110108MA01ABCD1",
            "91440300000000000",
            "51100000500021676",
            "Y1310115MA1K3XXXX",
            "00000000000000000",
        ] {
            let code = with_check_character(first_17);
            assert_eq!(validate(&code), Ok(()), "{code}");
        }
        // All zeros sums to 0, and "31 becomes 0".
        assert_eq!(check_character("00000000000000000"), Some('0'));
    }

    #[test]
    fn wrong_length_is_refused_with_the_length() {
        assert_eq!(validate(""), Err(UsccError::WrongLength { length: 0 }));
        assert_eq!(
            validate("91350100M000100Y4"),
            Err(UsccError::WrongLength { length: 17 })
        );
        assert_eq!(
            validate("91350100M000100Y433"),
            Err(UsccError::WrongLength { length: 19 })
        );
        // Counted in characters, not bytes: 18 CJK characters are 18 long and then refused
        // for the characters themselves.
        assert_eq!(
            validate("统一社会信用代码统一社会信用代码统一"),
            Err(UsccError::InvalidCharacter { position: 1 })
        );
    }

    #[test]
    fn characters_outside_the_alphabet_are_refused_with_their_position() {
        for (code, position) in [
            ("I1350100M000100Y43", 1),
            ("91350100M00010OY43", 15),
            ("913501002000100S43", 16),
            ("91350100m000100Y43", 9),
            ("91350100M000100Y4 ", 18),
            ("91350100M000100Y4Z", 18),
        ] {
            assert_eq!(
                validate(code),
                Err(UsccError::InvalidCharacter { position }),
                "{code}"
            );
        }
    }

    #[test]
    fn wrong_check_character_is_refused_without_revealing_the_right_one() {
        let error = validate("91350100M000100Y44").unwrap_err();
        assert_eq!(error, UsccError::CheckCharacterMismatch);
        let message = error.to_string();
        assert!(message.contains("does not match"), "{message}");
        assert!(!message.contains('3'), "{message}");
    }

    #[test]
    fn check_character_needs_exactly_17_alphabet_characters() {
        assert_eq!(check_character(""), None);
        assert_eq!(check_character("91350100M000100Y"), None);
        assert_eq!(check_character("91350100M000100Y43"), None);
        assert_eq!(check_character("91350100m000100Y4"), None);
        assert_eq!(check_character("91350100M000100I4"), None);
        assert_eq!(check_character("91350100M000100Y4"), Some('3'));
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            UsccError::WrongLength { length: 5 }.to_string(),
            "unified social credit code must have 18 characters, not 5"
        );
        assert!(
            UsccError::InvalidCharacter { position: 7 }
                .to_string()
                .starts_with("character 7 ")
        );
    }

    // Property: for any 17 alphabet characters, appending their check character gives a valid
    // code, and every single-character change of that code (each position, each other
    // character of the alphabet) makes it invalid.
    #[test]
    fn property_check_character_validates_and_every_single_change_is_caught() {
        let mut generator = Xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let first_17 = generator.alphabet_string(17);
            let code = with_check_character(&first_17);
            assert_eq!(validate(&code), Ok(()), "{code}");
            for (index, original) in code.chars().enumerate() {
                for &byte in ALPHABET {
                    let replacement = char::from(byte);
                    if replacement == original {
                        continue;
                    }
                    let changed = replace_at(&code, index, replacement);
                    assert_eq!(
                        validate(&changed),
                        Err(UsccError::CheckCharacterMismatch),
                        "{code} -> {changed}"
                    );
                }
            }
        }
    }

    // Property: swapping two different neighbouring characters among the first 17 is caught,
    // because neighbouring weights differ modulo a prime.
    #[test]
    fn property_adjacent_transpositions_are_caught() {
        let mut generator = Xorshift(0xD1B5_4A32_D192_ED03);
        for _ in 0..500 {
            let code = with_check_character(&generator.alphabet_string(17));
            let mut characters: Vec<char> = code.chars().collect();
            for index in 0..USCC_LENGTH - 2 {
                if characters[index] == characters[index + 1] {
                    continue;
                }
                characters.swap(index, index + 1);
                let swapped: String = characters.iter().collect();
                assert_eq!(
                    validate(&swapped),
                    Err(UsccError::CheckCharacterMismatch),
                    "{code} -> {swapped}"
                );
                characters.swap(index, index + 1);
            }
        }
    }

    #[test]
    fn validate_never_panics_on_odd_input() {
        let mut generator = Xorshift(42);
        for length in 0..40 {
            let text: String = (0..length)
                .map(|_| char::from_u32(generator.next_index(0x3000) as u32).unwrap_or('?'))
                .collect();
            let _ = validate(&text);
            let _ = check_character(&text);
        }
    }
}
